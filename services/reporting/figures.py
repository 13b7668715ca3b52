"""From exact sums to figures: the quantities of a slice of the month and the formulas of
docs/methodology.md applied to them (central, or with one parameter at its low or high end).

Every figure is linear in the quantities, so a city's total equals the sum of its hubs, of
its carriers, of its days (up to the final rounding; property-tested).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.reporting import domain
from services.reporting.domain import EmissionParameters, Emissions
from services.reporting.queries import SUMMED, Group

SIGNIFICANT_DIGITS = 6


def sig(x: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Rounded to significant digits, not decimals: a fixed number of decimals loses up to
    half of a small slice's NOx or PM2.5 (0.1 g of 0.16 g). Deterministic, so the JSON
    stays byte-identical; -0.0 becomes 0.0."""
    if x == 0 or x != x:
        return 0.0
    return float(f"{x:.{digits - 1}e}") + 0.0


def _add(target: dict[str, float], key: str, value: float) -> None:
    target[key] = target.get(key, 0) + value


@dataclass
class Quantities:
    """Additive physical quantities of a slice: the groups' exact sums, with what the
    formulas need split by carrier (trunk vehicle), vehicle type (battery kWh/km) and hub
    (hub energy)."""

    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMED, 0))
    trunk_m: dict[str, float] = field(default_factory=dict)  # per carrier
    planned_m: dict[str, float] = field(default_factory=dict)  # per vehicle type, not driven yet
    driven_m: dict[str, float] = field(default_factory=dict)  # per vehicle type, odometer
    modelled_energy_driven_m: dict[str, float] = field(default_factory=dict)  # per EV type
    measured_wh: float = 0.0
    diesel_trips_x1000: float = 0.0
    hub_metered_kwh: dict[str, float] = field(default_factory=dict)  # per hub, allocated
    hub_default_days: dict[str, float] = field(default_factory=dict)  # per hub, allocated
    hub_supplier_kwh: dict[str, float] = field(default_factory=dict)  # per g/kWh declared

    def add(self, g: Group) -> None:
        for name in SUMMED:
            self.sums[name] += getattr(g, name)
        _add(self.trunk_m, g.carrier_id, g.trunk_m)
        v = g.vehicle_type
        _add(self.planned_m, v, g.last_mile_m - g.actual_km_m)
        _add(self.driven_m, v, g.actual_km_m)
        if v in domain.ELECTRIC_VEHICLES:
            planned = g.last_mile_m - g.actual_km_m
            _add(self.modelled_energy_driven_m, v, g.modelled_energy_m - planned)
            self.measured_wh += g.measured_wh
        else:
            self.diesel_trips_x1000 += g.last_mile_trips_x1000

    def add_hub_energy(
        self, hub_id: str, metered_kwh: float | None, days: float, supplier_g: float | None
    ) -> None:
        if metered_kwh is not None:
            _add(self.hub_metered_kwh, hub_id, metered_kwh)
            if supplier_g is not None:
                _add(self.hub_supplier_kwh, repr(supplier_g), metered_kwh)
        else:
            _add(self.hub_default_days, hub_id, days)

    def merge(self, other: Quantities) -> None:
        for name in SUMMED:
            self.sums[name] += other.sums[name]
        for mine, theirs in (
            (self.trunk_m, other.trunk_m),
            (self.planned_m, other.planned_m),
            (self.driven_m, other.driven_m),
            (self.modelled_energy_driven_m, other.modelled_energy_driven_m),
            (self.hub_metered_kwh, other.hub_metered_kwh),
            (self.hub_default_days, other.hub_default_days),
            (self.hub_supplier_kwh, other.hub_supplier_kwh),
        ):
            for k, v in sorted(theirs.items()):
                _add(mine, k, v)
        self.measured_wh += other.measured_wh
        self.diesel_trips_x1000 += other.diesel_trips_x1000


def rollup(groups: Iterable[tuple[Group, Quantities]], key) -> dict[str, Quantities]:
    out: dict[str, Quantities] = {}
    for g, q in groups:
        out.setdefault(key(g), Quantities()).merge(q)
    return dict(sorted(out.items()))


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def evaluate(q: Quantities, p: EmissionParameters, planned_circuity: float) -> dict[str, float]:
    """The formulas of docs/methodology.md on one slice, unrounded. ``planned_circuity``
    is the circuity dispatch planned with: planned (not yet driven) km scale with the
    circuity under test, measured km do not."""
    s = q.sums
    c = p.circuity
    scale = c / planned_circuity

    baseline_km = s["tours_m"] / 1000 * c
    baseline = domain.diesel_emissions(baseline_km, p.diesel_l_per_100km, p)
    trunk_km = 0.0
    trunk = Emissions()
    for carrier, metres in sorted(q.trunk_m.items()):
        km = metres / 1000 * c
        trunk_km += km
        trunk += domain.diesel_emissions(km, p.trunk_l_per_100km[carrier], p)

    last_mile_km = 0.0
    diesel_km = 0.0
    kwh = q.measured_wh / 1000 * p.charging_loss_factor
    for vehicle in sorted(set(q.planned_m) | set(q.driven_m)):
        km = q.driven_m.get(vehicle, 0) / 1000 + q.planned_m.get(vehicle, 0) / 1000 * scale
        last_mile_km += km
        if vehicle in domain.ELECTRIC_VEHICLES:
            modelled = (
                q.modelled_energy_driven_m.get(vehicle, 0) / 1000
                + q.planned_m.get(vehicle, 0) / 1000 * scale
            )
            kwh += domain.charged_kwh(
                modelled_km=modelled, measured_battery_kwh=0, vehicle_type=vehicle, p=p
            )
        else:
            diesel_km += km
    last_mile = domain.diesel_emissions(
        diesel_km, p.diesel_l_per_100km, p
    ) + domain.electricity_emissions(kwh, p)

    metered = sum(v for _k, v in sorted(q.hub_metered_kwh.items()))
    hub_kwh = metered + sum(
        days * p.hub_kwh_per_day[h] for h, days in sorted(q.hub_default_days.items())
    )
    hub = domain.electricity_emissions(hub_kwh, p)
    supplier_kwh = sum(v for _k, v in sorted(q.hub_supplier_kwh.items()))
    supplier_kg = sum(
        float(g) / (1 - p.grid_loss_share) / 1000 * v for g, v in sorted(q.hub_supplier_kwh.items())
    )
    market_grid = p.grid_kg_per_kwh(p.grid_market_g_per_kwh)
    market = trunk.wtw + domain.diesel_emissions(diesel_km, p.diesel_l_per_100km, p).wtw
    market += (kwh + hub_kwh - supplier_kwh) * market_grid + supplier_kg

    actual = trunk + hub + last_mile
    saving = baseline.wtw - actual.wtw
    avoided = baseline_km - trunk_km - diesel_km
    city_km = s["tours_city_m"] / 1000 * c
    trunk_city_km = s["trunk_city_m"] / 1000 * c
    # the hub's own routes serve the city: all their diesel km count as in the city
    avoided_city = city_km - trunk_city_km - diesel_km
    tkm = s["chain_kgm"] / 1e6 * c
    parcels = s["parcels"]
    return {
        "baseline_kgco2e": baseline.wtw,
        "baseline_ttw_kgco2e": baseline.ttw,
        "baseline_wtt_kgco2e": baseline.wtt,
        "baseline_van_km": baseline_km,
        "baseline_van_km_in_city": city_km,
        "baseline_van_trips": s["tours_x1000"] / 1000,
        "baseline_van_trips_in_city": s["tours_city_x1000"] / 1000,
        "actual_kgco2e": actual.wtw,
        "actual_ttw_kgco2e": actual.ttw,
        "actual_wtt_kgco2e": actual.wtt,
        "actual_market_based_kgco2e": market,
        "depot_hub_kgco2e": trunk.wtw,
        "depot_hub_km": trunk_km,
        "depot_hub_km_in_city": trunk_city_km,
        "depot_hub_trips": s["trunk_x1000"] / 1000,
        "hub_kgco2e": hub.wtw,
        "hub_kwh": hub_kwh,
        "hub_kwh_metered": metered,
        "last_mile_kgco2e": last_mile.wtw,
        "last_mile_km": last_mile_km,
        "diesel_last_mile_km": diesel_km,
        "electricity_kwh": kwh,
        "saving_kgco2e": saving,
        "saving_pct": 100 * _ratio(saving, baseline.wtw),
        "diesel_van_km_avoided": avoided,
        "diesel_van_km_avoided_in_city": avoided_city,
        "van_trips_avoided_in_city": s["tours_city_x1000"] / 1000
        - s["trunk_city_x1000"] / 1000
        - q.diesel_trips_x1000 / 1000,
        "nox_avoided_g": avoided * p.nox_g_per_km,
        "pm25_avoided_g": avoided * p.pm25_g_per_km,
        "nox_avoided_in_city_g": avoided_city * p.nox_g_per_km,
        "pm25_avoided_in_city_g": avoided_city * p.pm25_g_per_km,
        "stops": s["stops"],
        "stop_visits": s["stop_visits"],
        "delivered_stops": s["delivered_stops"],
        "parcels": parcels,
        "mass_t": s["mass_g"] / 1e6,
        "transport_tkm": tkm,
        "baseline_g_per_parcel": 1000 * _ratio(baseline.wtw, parcels),
        "actual_g_per_parcel": 1000 * _ratio(actual.wtw, parcels),
        "baseline_g_per_tkm": 1000 * _ratio(baseline.wtw, tkm),
        "actual_g_per_tkm": 1000 * _ratio(actual.wtw, tkm),
    }


def rounded(figures: dict[str, float]) -> dict[str, float | int]:
    return {k: v if isinstance(v, int) else sig(v) for k, v in figures.items()}
