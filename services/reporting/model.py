"""The monthly emissions report as a typed model: built by report.py, rendered by
render_*.py (JSON, CSV, HTML, PDF) from this one object.

Every kg figure is well-to-wheel CO2e unless its name says TTW or WTT. Floats are rounded
to 6 significant digits before they get here (report.sig), so the JSON of a closed month
is byte-identical on every run.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA = "microhub.reporting.emissions_monthly.v2"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class City(_Model):
    id: str
    name: str
    country: str
    timezone: str


class Period(_Model):
    start: str
    end: str


class Metrics(_Model):
    """Figures of one slice of the month (the city, a hub, a carrier, a vehicle type, a
    day). All additive ones add up across slices (property-tested)."""

    # the counterfactual: carriers' diesel vans from their depots, no hub
    baseline_kgco2e: float
    baseline_ttw_kgco2e: float
    baseline_wtt_kgco2e: float
    baseline_van_km: float
    baseline_van_km_in_city: float
    baseline_van_trips: float
    baseline_van_trips_in_city: float
    # what happened: depot -> hub trips, hub operation, last mile from the hub
    actual_kgco2e: float
    actual_ttw_kgco2e: float
    actual_wtt_kgco2e: float
    actual_market_based_kgco2e: float
    depot_hub_kgco2e: float
    depot_hub_km: float
    depot_hub_km_in_city: float
    depot_hub_trips: float
    hub_kgco2e: float
    hub_kwh: float
    hub_kwh_metered: float
    last_mile_kgco2e: float
    last_mile_km: float
    diesel_last_mile_km: float
    electricity_kwh: float  # drawn from the grid by the last-mile vehicles
    # the comparison
    saving_kgco2e: float
    saving_pct: float
    diesel_van_km_avoided: float
    diesel_van_km_avoided_in_city: float
    van_trips_avoided_in_city: float
    nox_avoided_g: float
    pm25_avoided_g: float
    nox_avoided_in_city_g: float
    pm25_avoided_in_city_g: float
    # activity and intensities
    stops: int
    stop_visits: int
    delivered_stops: int
    parcels: int
    mass_t: float
    transport_tkm: float
    baseline_g_per_parcel: float
    actual_g_per_parcel: float
    baseline_g_per_tkm: float
    actual_g_per_tkm: float


class Totals(Metrics):
    routes: int
    consignments: int
    hub_kgco2e_unallocated: float  # a hub's energy in a month it handled no parcel


class HubRow(Metrics):
    hub_id: str
    hub_name: str


class CarrierRow(Metrics):
    carrier_id: str


class VehicleRow(Metrics):
    vehicle_type: str


class DayRow(Metrics):
    date: str


class Range(_Model):
    low: float
    central: float
    high: float


class Ranges(_Model):
    saving_kgco2e: Range
    baseline_kgco2e: Range
    actual_kgco2e: Range
    nox_avoided_in_city_g: Range
    pm25_avoided_in_city_g: Range


class SensitivityRow(_Model):
    parameter: str
    keys: list[str]
    saving_at_low_kgco2e: float
    saving_at_high_kgco2e: float
    swing_kgco2e: float


class LegQuality(_Model):
    """ISO 14083 data quality: how much of a leg's CO2e rests on primary data."""

    leg: Literal["baseline", "depot_hub", "hub", "last_mile"]
    primary_share: float
    basis: str


class HubEnergy(_Model):
    hub_id: str
    hub_name: str
    basis: Literal["metered", "modelled", "none"]
    kwh: float
    days: int
    kgco2e: float
    market_based_kgco2e: float
    parcels: int
    g_per_parcel: float
    meter: str


class TrendPoint(_Model):
    month: str
    status: Literal["closed", "open"]
    baseline_kgco2e: float
    actual_kgco2e: float
    saving_kgco2e: float
    parcels: int


class Headline(_Model):
    verdict: Literal["saved", "added", "uncertain", "no_data"]
    sentence: str


class Banner(_Model):
    kind: Literal[
        "open_month",
        "no_data",
        "modelled_hub_energy",
        "no_saving",
        "overridden_factors",
        "placeholder_factors",
    ]
    text: str


class FactorRow(_Model):
    key: str
    value: float
    low: float | None
    high: float | None
    unit: str
    source: str
    year: int
    boundary: str
    gwp: str
    confidence: str
    primary: bool
    note: str
    overridden: bool


class CityBoundary(_Model):
    source: str
    year: int
    note: str
    vertices: int


class Factors(_Model):
    version: str
    digest: str
    grid_country: str
    table: list[FactorRow]
    assumptions: dict[str, str | int | float]
    boundary: CityBoundary | None


class Methodology(_Model):
    version: str
    standard: str
    document: str
    steps: list[str]


class Inputs(_Model):
    events: int
    digest: str


class Supersedes(_Model):
    number: int
    id: str
    published_at: str
    changed: list[str]


class Version(_Model):
    """What identifies this report: its content (id = a hash of everything but this block
    and the publication) and what it was computed from."""

    id: str
    methodology: str
    factors_version: str
    factors_digest: str
    inputs_digest: str
    number: int | None = None  # the n-th published version of a closed month
    published_at: str | None = None
    supersedes: Supersedes | None = None


class EmissionsReport(_Model):
    schema_: str
    city: City
    month: str
    period: Period
    status: Literal["closed", "open"]
    generated_at: str
    data_until: str | None
    headline: Headline
    banners: list[Banner]
    totals: Totals
    ranges: Ranges
    sensitivity: list[SensitivityRow]
    data_quality: list[LegQuality]
    data_basis: dict[str, float]
    hub_energy: list[HubEnergy]
    by_hub: list[HubRow]
    by_carrier: list[CarrierRow]
    by_vehicle_type: list[VehicleRow]
    daily: list[DayRow]
    trend: list[TrendPoint]
    factors: Factors
    methodology: Methodology
    inputs: Inputs
    version: Version

    def as_json_dict(self) -> dict:
        data = self.model_dump(mode="json")
        data["schema"] = data.pop("schema_")
        return data

    @classmethod
    def from_json(cls, body: bytes | str) -> EmissionsReport:
        data = json.loads(body)
        data["schema_"] = data.pop("schema")
        return cls.model_validate(data)


def to_json(report: EmissionsReport) -> bytes:
    return (
        json.dumps(report.as_json_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    ).encode()


def content_without_publication(report: EmissionsReport) -> bytes:
    """What a version id hashes: the report without its version block and generation time."""
    data = report.as_json_dict()
    data.pop("version")
    data.pop("generated_at")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
