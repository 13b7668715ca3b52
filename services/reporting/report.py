"""The monthly emissions report of one city, as a plain dict (JSON-ready).

SQL does the aggregation (queries.monthly_groups: exact integer sums per day x hub x
carrier x vehicle type); this module applies the city's factors to those few hundred
sums and rolls them up. Floats are rounded to fixed decimals and the JSON is written with
sorted keys, so a closed month gives byte-identical JSON on every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import domain, queries, store
from services.reporting.factors import FactorCatalogue, FactorSet

SCHEMA = "microhub.reporting.emissions_monthly.v1"

METHODOLOGY = (
    "Standard: ISO 14083:2023 and the GLEC Framework v3, well-to-wheel (WTW = WTT + TTW) CO2e.",
    "Baseline (without the hub): each consignment is delivered from the carrier's depot by "
    "diesel van: depot -> its stops (nearest-neighbour order) -> depot, split into as many "
    "trips as the van's payload and load volume require; road km = great-circle km x "
    "circuity factor. Computed once when the booking is confirmed.",
    "Actual (with the hub): the carrier's diesel van drives depot -> hub -> depot (as many "
    "trips as its capacity requires), and the consolidated last-mile routes run from the "
    "hub, with actual km and kWh from RouteCompleted when present, planned km otherwise.",
    "Allocation: a shared route's km and energy are allocated to the consignments on it by "
    "transport activity, weight x road distance hub -> stop (ISO 14083 / GLEC); the shares "
    "of a route sum to 1. A consignment's baseline and depot-hub trips are counted with the "
    "routes that carry its stops, in proportion to its parcels first routed there.",
    "Diesel: km x fuel use (l/100 km) x WTW kgCO2e/l. Electric: kWh x grid intensity of the "
    "hub's country (gCO2e/kWh); kWh = km x kWh/km at the charger, or measured battery kWh x "
    "charging-loss factor.",
    "Local pollutants: avoided diesel van-km x NOx and PM2.5 exhaust g/km; avoided diesel "
    "van-km = baseline km - (depot-hub km + diesel last-mile km).",
    "Cancelled and no-show bookings are removed from the baseline and the depot-hub trips. "
    "Days and the month are bounded at local midnight in the city's time zone; a route "
    "counts on the day it was completed (planned, until completed).",
    "Factors: the table below (value, unit, source, year, confidence); low-confidence values "
    "are labelled and must be verified; a city may override any factor.",
)


class UnknownCity(LookupError):
    pass


class ReportUnavailable(ValueError):
    """The projection holds something a report cannot be built from (e.g. a time zone)."""


@dataclass
class Quantities:
    """Additive physical quantities of a slice of the month (exact integers)."""

    stops: int = 0
    delivered_stops: int = 0
    parcels: int = 0
    baseline_m: int = 0
    baseline_trips_x1000: int = 0
    trunk_m: int = 0
    last_mile_m: int = 0
    diesel_last_mile_m: int = 0
    actual_km_m: int = 0
    modelled_energy_m: dict[str, int] | None = None  # per electric vehicle type
    measured_wh: int = 0

    def add(self, g: queries.Group) -> None:
        self.stops += g.stops
        self.delivered_stops += g.delivered_stops
        self.parcels += g.parcels
        self.baseline_m += g.baseline_m
        self.baseline_trips_x1000 += g.baseline_trips_x1000
        self.trunk_m += g.trunk_m
        self.last_mile_m += g.last_mile_m
        self.actual_km_m += g.actual_km_m
        if g.vehicle_type in domain.DIESEL_VEHICLES:
            self.diesel_last_mile_m += g.last_mile_m
        else:
            if self.modelled_energy_m is None:
                self.modelled_energy_m = {}
            self.modelled_energy_m[g.vehicle_type] = (
                self.modelled_energy_m.get(g.vehicle_type, 0) + g.modelled_energy_m
            )
            self.measured_wh += g.measured_wh


SIGNIFICANT_DIGITS = 6


def sig(x: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Rounded to significant digits, not decimals: a fixed number of decimals loses up to
    half of a small slice's NOx or PM2.5 (0.1 g of 0.16 g). Deterministic, so the JSON
    stays byte-identical; -0.0 becomes 0.0."""
    if x == 0 or x != x:
        return 0.0
    return float(f"{x:.{digits - 1}e}") + 0.0


def metrics(q: Quantities, p: domain.EmissionParameters) -> dict[str, float | int]:
    """Factors applied to one slice. Every figure is linear in the quantities, so a city's
    total equals the sum of its hubs and of its carriers (up to the final rounding)."""
    baseline_km = q.baseline_m / 1000
    trunk_km = q.trunk_m / 1000
    diesel_lm_km = q.diesel_last_mile_m / 1000
    modelled = q.modelled_energy_m or {}
    kwh = sum(m / 1000 * p.kwh_per_km[v] for v, m in sorted(modelled.items()))
    kwh += q.measured_wh / 1000 * p.charging_loss_factor
    baseline_kg = domain.diesel_kgco2e(baseline_km, p)
    trunk_kg = domain.diesel_kgco2e(trunk_km, p)
    last_mile_kg = domain.diesel_kgco2e(diesel_lm_km, p) + domain.electricity_kgco2e(kwh, p)
    actual_kg = trunk_kg + last_mile_kg
    saving_kg = baseline_kg - actual_kg
    avoided_km = baseline_km - trunk_km - diesel_lm_km
    return {
        "baseline_kgco2e": sig(baseline_kg),
        "actual_kgco2e": sig(actual_kg),
        "depot_hub_kgco2e": sig(trunk_kg),
        "last_mile_kgco2e": sig(last_mile_kg),
        "saving_kgco2e": sig(saving_kg),
        "saving_pct": sig(100 * saving_kg / baseline_kg) if baseline_kg > 0 else 0.0,
        "baseline_van_km": sig(baseline_km),
        "baseline_van_trips": sig(q.baseline_trips_x1000 / 1000),
        "depot_hub_km": sig(trunk_km),
        "last_mile_km": sig(q.last_mile_m / 1000),
        "diesel_van_km_avoided": sig(avoided_km),
        "electricity_kwh": sig(kwh),
        "nox_avoided_g": sig(avoided_km * p.nox_g_per_km),
        "pm25_avoided_g": sig(avoided_km * p.pm25_g_per_km),
        "stops": q.stops,
        "delivered_stops": q.delivered_stops,
        "parcels": q.parcels,
    }


def _rollup(groups: Iterable[queries.Group], key) -> dict[str, Quantities]:
    out: dict[str, Quantities] = {}
    for g in groups:
        out.setdefault(key(g), Quantities()).add(g)
    return dict(sorted(out.items()))


def _basis(q: Quantities, p: domain.EmissionParameters) -> dict[str, float]:
    modelled = q.modelled_energy_m or {}
    modelled_kwh = sum(m / 1000 * p.kwh_per_km[v] for v, m in sorted(modelled.items()))
    measured_kwh = q.measured_wh / 1000 * p.charging_loss_factor
    energy = modelled_kwh + measured_kwh
    return {
        "last_mile_km_from_actual_share": round(q.actual_km_m / q.last_mile_m, 4)
        if q.last_mile_m
        else 0.0,
        "last_mile_km_from_plan_share": round(1 - q.actual_km_m / q.last_mile_m, 4)
        if q.last_mile_m
        else 0.0,
        "electricity_measured_share": round(measured_kwh / energy, 4) if energy else 0.0,
        "electricity_modelled_share": round(modelled_kwh / energy, 4) if energy else 0.0,
    }


def summarise(
    groups: list[queries.Group], p: domain.EmissionParameters, days: list[str]
) -> dict[str, Any]:
    """Totals and breakdowns of the month from its aggregated groups (a few hundred rows)."""
    total = Quantities()
    for g in groups:
        total.add(g)
    by_hub = _rollup(groups, lambda g: g.hub_id)
    by_carrier = _rollup(groups, lambda g: g.carrier_id)
    by_vehicle = _rollup(groups, lambda g: g.vehicle_type)
    by_day = _rollup(groups, lambda g: g.day)
    return {
        "totals": metrics(total, p),
        "data_basis": _basis(total, p),
        "by_hub": [{"hub_id": h, **metrics(q, p)} for h, q in by_hub.items()],
        "by_carrier": [{"carrier_id": c, **metrics(q, p)} for c, q in by_carrier.items()],
        "by_vehicle_type": [{"vehicle_type": v, **metrics(q, p)} for v, q in by_vehicle.items()],
        "daily": [{"date": d, **metrics(by_day.get(d, Quantities()), p)} for d in days],
    }


async def build_report(
    session: AsyncSession,
    catalogue: FactorCatalogue,
    city_id: str,
    month: str,
    *,
    now: datetime | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Raises ValueError for a malformed month and UnknownCity for a city never seen."""
    domain.parse_month(month)
    city = await store.find_city(session, city_id)
    if city is None:
        raise UnknownCity(f"no booking for city {city_id!r} has been seen: unknown city")
    try:
        window = domain.month_window(month, city.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportUnavailable(
            f"city {city_id!r} has an unusable time zone {city.timezone!r}: {exc}"
        ) from None
    factors: FactorSet = catalogue.for_city(city_id)
    p = factors.parameters(city.country)
    step = progress or (lambda _what: None)

    step("aggregating")
    groups = await queries.monthly_groups(session, city_id, window.days)
    step("counting")
    counts = await queries.monthly_counts(session, city_id, window.start_ms, window.end_ms)
    step("hashing inputs")
    n_events, digest = await queries.input_digest(session, city_id, window.start_ms, window.end_ms)
    hub_names = await store.city_hubs(session, city_id)
    step("applying factors")

    summary = summarise(groups, p, [d for d, _lo, _hi in window.days])
    return {
        "schema": SCHEMA,
        "city": {
            "id": city.city_id,
            "name": city.name,
            "country": city.country,
            "timezone": city.timezone,
        },
        "month": window.month,
        "period": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "status": "closed" if domain.month_is_closed(window, now) else "open",
        "totals": {**summary["totals"], **counts},
        "data_basis": summary["data_basis"],
        "by_hub": [
            {"hub_name": hub_names.get(row["hub_id"], row["hub_id"]), **row}
            for row in summary["by_hub"]
        ],
        "by_carrier": summary["by_carrier"],
        "by_vehicle_type": summary["by_vehicle_type"],
        "daily": summary["daily"],
        "factors": {
            "version": factors.version,
            "digest": factors.digest,
            "table": factors.table(),
            "grid_country": city.country,
        },
        "methodology": {
            "standard": "ISO 14083:2023; GLEC Framework v3",
            "document": "docs/methodology.md",
            "steps": list(METHODOLOGY),
        },
        "inputs": {"events": n_events, "digest": digest},
    }


def to_json(report: dict[str, Any]) -> bytes:
    return (json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
