"""How sure the report is: one parameter at a time at its low and high end (the
sensitivity table), the ranges of the headline figures, and the share of primary data per
leg (ISO 14083 data quality). docs/methodology.md, "Uncertainty", says the same in words.

The range of a figure F: with d_i- and d_i+ the changes of F when parameter i alone is at
its low or its high end, F_low = F - sqrt(sum of the squared decreases) and F_high = F +
sqrt(sum of the squared increases): the usual first-order combination of independent
parameters, so low <= central <= high by construction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from services.reporting import domain, model
from services.reporting.factors import FactorSet, Level
from services.reporting.figures import Quantities, evaluate, sig

RANGED = (
    "saving_kgco2e",
    "baseline_kgco2e",
    "actual_kgco2e",
    "nox_avoided_in_city_g",
    "pm25_avoided_in_city_g",
)

VEHICLE_NAMES = {"e_cargo_bike": "e-cargo bike", "e_trike": "e-trike", "e_van": "e-van"}


def parameters_with_ranges(
    factors: FactorSet, country: str, q: Quantities, hubs: list[str], carriers: list[str]
) -> list[tuple[str, list[str]]]:
    """(label, factor keys moved together) of every parameter the figures depend on."""
    location, _market, losses = factors.grid_keys(country)
    out = [
        ("Diesel van fuel use (l/100 km)", ["vehicle.diesel_van.l_per_100km"]),
        ("Diesel tank-to-wheel factor (kg CO2e/l)", ["diesel.ttw_kgco2e_per_l"]),
        ("Diesel well-to-tank factor (kg CO2e/l)", ["diesel.wtt_kgco2e_per_l"]),
        ("Road circuity (road km per straight km)", ["road.circuity_factor"]),
        ("Grid intensity, location-based (g/kWh)", [location]),
        ("Grid losses (share)", [losses]),
        ("Charging losses (factor)", ["electricity.charging_loss_factor"]),
    ]
    for vehicle in sorted(domain.ELECTRIC_VEHICLES):
        out.append(
            (
                f"Battery energy per km, {VEHICLE_NAMES.get(vehicle, vehicle)}",
                [f"vehicle.{vehicle}.battery_kwh_per_km"],
            )
        )
    modelled_hubs = sorted(q.hub_default_days)
    if modelled_hubs:
        keys = sorted({factors.hub_energy_key(h) for h in modelled_hubs})
        out.append(("Hub energy where not metered (kWh/day)", keys))
    for carrier in sorted(carriers):
        key = factors.trunk_key(carrier, "l_per_100km")
        if key != "vehicle.diesel_van.l_per_100km":
            out.append((f"Depot-hub vehicle fuel use of {carrier}", [key]))
    out.append(("NOx per diesel van-km (g/km)", ["pollutant.diesel_van.nox_g_per_km"]))
    out.append(("PM2.5 per diesel van-km (g/km)", ["pollutant.diesel_van.pm25_g_per_km"]))
    # only keys with a range move anything
    return [(label, keys) for label, keys in out if any(_has_range(factors, k) for k in keys)]


def _has_range(factors: FactorSet, key: str) -> bool:
    f = factors.factors.get(key)
    return f is not None and (f.at("low") != f.value or f.at("high") != f.value)


def ranges_and_sensitivity(
    factors: FactorSet,
    country: str,
    q: Quantities,
    hub_names: Mapping[str, str],
    carriers: list[str],
    planned_circuity: float,
) -> tuple[model.Ranges, list[model.SensitivityRow]]:
    hubs = sorted(set(hub_names) | set(q.hub_default_days) | set(q.hub_metered_kwh))

    def figures(moved: Mapping[str, Level]) -> dict[str, float]:
        p = factors.parameters(country, hubs=hubs, carriers=carriers, moved=moved)
        return evaluate(q, p, planned_circuity)

    central = figures({})
    down: dict[str, float] = dict.fromkeys(RANGED, 0.0)
    up: dict[str, float] = dict.fromkeys(RANGED, 0.0)
    rows = []
    for label, keys in parameters_with_ranges(factors, country, q, hubs, carriers):
        at_low = figures(dict.fromkeys(keys, "low"))
        at_high = figures(dict.fromkeys(keys, "high"))
        for name in RANGED:
            for variant in (at_low, at_high):
                change = variant[name] - central[name]
                if change < 0:
                    down[name] += change * change
                else:
                    up[name] += change * change
        swing = abs(at_high["saving_kgco2e"] - at_low["saving_kgco2e"])
        if swing > 0:
            rows.append(
                model.SensitivityRow(
                    parameter=label,
                    keys=keys,
                    saving_at_low_kgco2e=sig(at_low["saving_kgco2e"]),
                    saving_at_high_kgco2e=sig(at_high["saving_kgco2e"]),
                    swing_kgco2e=sig(swing),
                )
            )
    rows.sort(key=lambda r: (-r.swing_kgco2e, r.parameter))

    def span(name: str) -> model.Range:
        c = central[name]
        return model.Range(
            low=sig(c - math.sqrt(down[name])), central=sig(c), high=sig(c + math.sqrt(up[name]))
        )

    return model.Ranges(**{name: span(name) for name in RANGED}), rows


def data_quality(
    factors: FactorSet, q: Quantities, p: domain.EmissionParameters, planned_circuity: float
) -> list[model.LegQuality]:
    """The share of each leg's CO2e computed from primary data (measured by the operator
    or carrier) rather than from defaults and models."""
    f = evaluate(q, p, planned_circuity)
    trunk_primary = 0.0
    trunk_total = 0.0
    for carrier, metres in sorted(q.trunk_m.items()):
        key = factors.trunk_key(carrier, "l_per_100km")
        kg = domain.diesel_emissions(
            metres / 1000 * p.circuity, p.trunk_l_per_100km[carrier], p
        ).wtw
        trunk_total += kg
        if factors.factor(key).primary:
            trunk_primary += kg
    s = q.sums
    measured_kwh = q.measured_wh / 1000 * p.charging_loss_factor
    electric_kg = domain.electricity_emissions(f["electricity_kwh"], p).wtw
    diesel_kg = f["last_mile_kgco2e"] - electric_kg
    driven = sum(q.driven_m.get(v, 0) for v in q.driven_m if v not in domain.ELECTRIC_VEHICLES)
    planned = sum(q.planned_m.get(v, 0) for v in q.planned_m if v not in domain.ELECTRIC_VEHICLES)
    diesel_primary = driven / (driven + planned) if driven + planned else 0.0
    electric_primary = measured_kwh / f["electricity_kwh"] if f["electricity_kwh"] else 0.0
    last_mile = f["last_mile_kgco2e"]
    last_mile_primary = (
        (electric_kg * electric_primary + diesel_kg * diesel_primary) / last_mile
        if last_mile
        else 0.0
    )
    hub_primary = f["hub_kwh_metered"] / f["hub_kwh"] if f["hub_kwh"] else 0.0
    km_share = s["actual_km_m"] / s["last_mile_m"] if s["last_mile_m"] else 0.0
    return [
        model.LegQuality(
            leg="baseline", primary_share=0.0, basis="modelled: a counterfactual, never measured"
        ),
        model.LegQuality(
            leg="depot_hub",
            primary_share=sig(trunk_primary / trunk_total) if trunk_total else 0.0,
            basis="distance modelled (great-circle x circuity); fuel use from the carrier where marked primary",
        ),
        model.LegQuality(
            leg="hub",
            primary_share=sig(hub_primary),
            basis="metered kWh from the operators' API, else a default",
        ),
        model.LegQuality(
            leg="last_mile",
            primary_share=sig(last_mile_primary),
            basis=f"odometer km for {sig(km_share * 100, 3)} % of km; "
            "measured battery energy where telemetry reports it",
        ),
    ]
