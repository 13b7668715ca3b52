"""The versioned emission-factor file (v2): loading, validation, per-city overrides, and
the numbers one city's report uses (central, or a parameter moved to its low or high end
for the uncertainty range).

The shipped defaults live in ``data/emission_factors.yaml``; the battery kWh/km of the
electric vehicles come from ``contracts/data/vehicle_energy.yaml`` (shared with dispatch)
and join the table under ``vehicle.<type>.battery_kwh_per_km``. A deployment may add a
file of the same shape (``MICROHUB_EMISSION_FACTORS_FILE``): its ``factors`` replace
defaults everywhere, ``cities.<id>`` entries for one city, ``assumptions`` and
``boundaries`` likewise.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.vehicle_energy import vehicle_energy
from services.reporting.domain import ELECTRIC_VEHICLES, EmissionParameters, Point

DEFAULT_FILE = Path(__file__).parent / "data" / "emission_factors.yaml"

Level = Literal["low", "central", "high"]


class FactorError(ValueError):
    """The factor file is missing, unreadable, or lacks a value a report needs."""


class Factor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(allow_inf_nan=False, ge=0, description="central value")
    low: float | None = Field(default=None, allow_inf_nan=False, ge=0)
    high: float | None = Field(default=None, allow_inf_nan=False, ge=0)
    unit: str = Field(min_length=1)
    source: str = Field(min_length=1)
    year: int = Field(ge=1900, le=2100)
    boundary: Literal["WTW", "TTW", "WTT", "n/a"] = "n/a"
    gwp: Literal["AR4", "AR5", "AR6", "n/a"] = "n/a"
    confidence: Literal["high", "medium", "low"]
    primary: bool = Field(
        default=False, description="measured by the operator or carrier (ISO 14083 primary data)"
    )
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Factor:
        if not self.at("low") <= self.value <= self.at("high"):
            raise ValueError(
                f"needs low <= value <= high, got {self.low}, {self.value}, {self.high}"
            )
        return self

    def at(self, level: Level) -> float:
        """The value at one end of its range (a factor without a range has none)."""
        if level == "low" and self.low is not None:
            return self.low
        if level == "high" and self.high is not None:
            return self.high
        return self.value


class Boundary(BaseModel):
    """A city boundary polygon: (lat, lon) vertices, in order, not closed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    polygon: list[tuple[float, float]] = Field(min_length=3)
    source: str = Field(min_length=1)
    year: int = Field(ge=1900, le=2100)
    note: str = ""


Assumption = str | int | float


class FactorFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=100)
    factors: dict[str, Factor] = Field(default_factory=dict)
    cities: dict[str, dict[str, Factor]] = Field(default_factory=dict)
    assumptions: dict[str, Assumption] = Field(default_factory=dict)
    boundaries: dict[str, Boundary] = Field(default_factory=dict)


def read_factor_file(path: Path) -> FactorFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FactorError(f"emission factor file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise FactorError(f"emission factor file {path} cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise FactorError(
            f"emission factor file {path}: expected a mapping with 'version' and 'factors'"
        )
    try:
        parsed = FactorFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise FactorError(f"emission factor file {path}: {problems}") from None
    return _v1_keys(path, parsed)


RETIRED = {
    r"^diesel\.wtw_kgco2e_per_l$": "give diesel.ttw_kgco2e_per_l and diesel.wtt_kgco2e_per_l",
    r"^vehicle\.(e_\w+)\.kwh_per_km$": "give vehicle.\\1.battery_kwh_per_km (from the battery; "
    "charging losses are electricity.charging_loss_factor)",
    r"^grid\.(\w\w)\.gco2e_per_kwh$": "give grid.\\1.location_gco2e_per_kwh (per kWh generated; "
    "grid losses are grid.\\1.loss_share)",
}


def _v1_keys(path: Path, parsed: FactorFile) -> FactorFile:
    """A v1 key would be ignored silently by v2: refuse it and name its replacement."""
    keys = list(parsed.factors) + [k for layer in parsed.cities.values() for k in layer]
    for key in keys:
        for pattern, replacement in RETIRED.items():
            if re.match(pattern, key):
                raise FactorError(
                    f"emission factor file {path}: {key!r} is a v1 key that methodology v2 no "
                    f"longer reads: {re.sub(pattern, replacement, key)}"
                )
    return parsed


def shared_vehicle_factors() -> dict[str, Factor]:
    """contracts/data/vehicle_energy.yaml as factor-table rows."""
    shared = vehicle_energy()
    return {
        f"vehicle.{vehicle.value}.battery_kwh_per_km": Factor(
            value=e.central,
            low=e.low,
            high=e.high,
            unit="kWh/km from the battery",
            source=f"contracts/data/vehicle_energy.yaml {shared.version} (shared with dispatch): "
            + e.source,
            year=e.year,
            confidence=e.confidence,
            note=e.note,
        )
        for vehicle, e in sorted(shared.vehicles.items())
    }


# Baseline and trunk parameters change the stored tours (services/reporting/baselines.py):
# their digest marks which carrier-days must be computed again.
TOUR_KEYS = ("vehicle.diesel_van.payload_kg", "vehicle.diesel_van.load_volume_m3")


@dataclass(frozen=True)
class FactorSet:
    """The factors one city's report uses, with their provenance."""

    version: str
    factors: dict[str, Factor]
    overridden: frozenset[str]
    assumptions: Mapping[str, Assumption]
    boundary: Boundary | None

    def factor(self, key: str) -> Factor:
        try:
            return self.factors[key]
        except KeyError:
            raise FactorError(
                f"the emission factor {key!r} is missing from the factor file"
            ) from None

    def value(self, key: str, level: Level = "central") -> float:
        return self.factor(key).at(level)

    def first(self, *keys: str) -> str:
        """The first of ``keys`` the table has (specific before general)."""
        for key in keys:
            if key in self.factors:
                return key
        raise FactorError(f"the emission factor {keys[-1]!r} is missing from the factor file")

    def assumption(self, key: str) -> Assumption:
        try:
            return self.assumptions[key]
        except KeyError:
            raise FactorError(f"the assumption {key!r} is missing from the factor file") from None

    @property
    def tour_grouping(self) -> str:
        grouping = str(self.assumption("baseline.tour_grouping"))
        if grouping not in {"carrier_day", "consignment"}:
            raise FactorError(
                f"baseline.tour_grouping is {grouping!r}: use carrier_day or consignment"
            )
        return grouping

    def trunk_key(self, carrier_id: str, what: str) -> str:
        return self.first(f"carrier.{carrier_id}.trunk.{what}", f"vehicle.diesel_van.{what}")

    def hub_energy_key(self, hub_id: str) -> str:
        return self.first(f"hub.{hub_id}.default_kwh_per_day", "hub.default_kwh_per_day")

    def grid_keys(self, country: str) -> tuple[str, str, str]:
        location = f"grid.{country}.location_gco2e_per_kwh"
        self.factor(location)  # a country without a grid intensity cannot be reported
        market = self.first(f"grid.{country}.market_gco2e_per_kwh", location)
        losses = self.first(f"grid.{country}.loss_share", "electricity.grid_loss_share")
        return location, market, losses

    def parameters(
        self,
        country: str,
        *,
        hubs: list[str] = (),  # type: ignore[assignment]
        carriers: list[str] = (),  # type: ignore[assignment]
        moved: Mapping[str, Level] | None = None,
    ) -> EmissionParameters:
        """The numbers of the formulas; ``moved`` puts some keys at their low or high end
        (one parameter at a time, for the sensitivity table)."""
        moved = moved or {}

        def v(key: str) -> float:
            return self.value(key, moved.get(key, "central"))

        location, market, losses = self.grid_keys(country)
        return EmissionParameters(
            circuity=v("road.circuity_factor"),
            diesel_ttw_kg_per_l=v("diesel.ttw_kgco2e_per_l"),
            diesel_wtt_kg_per_l=v("diesel.wtt_kgco2e_per_l"),
            diesel_l_per_100km=v("vehicle.diesel_van.l_per_100km"),
            trunk_l_per_100km={c: v(self.trunk_key(c, "l_per_100km")) for c in sorted(carriers)},
            grid_location_g_per_kwh=v(location),
            grid_market_g_per_kwh=v(market),
            grid_loss_share=v(losses),
            charging_loss_factor=v("electricity.charging_loss_factor"),
            battery_kwh_per_km={
                t: v(f"vehicle.{t}.battery_kwh_per_km") for t in sorted(ELECTRIC_VEHICLES)
            },
            hub_kwh_per_day={h: v(self.hub_energy_key(h)) for h in sorted(hubs)},
            nox_g_per_km=v("pollutant.diesel_van.nox_g_per_km"),
            pm25_g_per_km=v("pollutant.diesel_van.pm25_g_per_km"),
        )

    def polygon(self) -> list[Point] | None:
        if self.boundary is None:
            return None
        return [Point(lat, lon) for lat, lon in self.boundary.polygon]

    def tour_parameters_digest(self, carriers: list[str]) -> str:
        """What the stored tours of a carrier-day depend on: van capacity, grouping, tour
        length, the carriers' trunk vehicles and the city boundary (not circuity, which is
        applied at report time to great-circle metres)."""
        keys = list(TOUR_KEYS) + [
            self.trunk_key(c, what)
            for c in sorted(carriers)
            for what in ("payload_kg", "load_volume_m3")
        ]
        document = {
            "factors": {k: self.value(k) for k in keys},
            "carriers": {
                c: [self.trunk_key(c, "payload_kg"), self.trunk_key(c, "load_volume_m3")]
                for c in sorted(carriers)
            },
            "grouping": self.tour_grouping,
            "max_stops": int(self.assumption("baseline.max_stops_per_tour")),
            "boundary": self.boundary.polygon if self.boundary else None,
        }
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def table(self) -> list[dict[str, object]]:
        return [
            {"key": key, **f.model_dump(), "overridden": key in self.overridden}
            for key, f in sorted(self.factors.items())
        ]

    @property
    def digest(self) -> str:
        canonical = json.dumps(
            {
                "factors": self.table(),
                "assumptions": dict(sorted(self.assumptions.items())),
                "boundary": self.boundary.model_dump() if self.boundary else None,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class FactorCatalogue:
    """Defaults plus the optional user file; ``for_city`` resolves one city's set."""

    def __init__(self, defaults: FactorFile, user: FactorFile | None = None) -> None:
        self.defaults = defaults
        self.user = user

    @classmethod
    def load(
        cls, user_file: Path | None = None, default_file: Path = DEFAULT_FILE
    ) -> FactorCatalogue:
        return cls(
            read_factor_file(default_file), read_factor_file(user_file) if user_file else None
        )

    def for_city(self, city_id: str) -> FactorSet:
        base = {**shared_vehicle_factors(), **self.defaults.factors}
        layers = [base, self.defaults.cities.get(city_id, {})]
        version = self.defaults.version
        assumptions = dict(self.defaults.assumptions)
        boundary = self.defaults.boundaries.get(city_id)
        if self.user is not None:
            layers += [self.user.factors, self.user.cities.get(city_id, {})]
            version = f"{version}+{self.user.version}"
            assumptions.update(self.user.assumptions)
            boundary = self.user.boundaries.get(city_id, boundary)
        merged: dict[str, Factor] = {}
        overridden: set[str] = set()
        for depth, layer in enumerate(layers):
            for key, factor in layer.items():
                # layers 0 and 1 are the shipped defaults (global, then the city's own)
                if depth > 1 and (merged.get(key) != factor or key not in base):
                    overridden.add(key)
                merged[key] = factor
        return FactorSet(
            version=version,
            factors=merged,
            overridden=frozenset(overridden),
            assumptions=assumptions,
            boundary=boundary,
        )
