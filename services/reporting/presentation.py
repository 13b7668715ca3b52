"""How figures read to a council: tonnes with sensible rounding, month names, the
headline sentence, and the labels the HTML, PDF and CSV share."""

from __future__ import annotations

from datetime import date

from services.reporting import model
from services.reporting.model import Range


def month_name(month: str) -> str:
    year, mon = (int(x) for x in month.split("-"))
    return date(year, mon, 1).strftime("%B %Y")


def tonnes(kg: float) -> str:
    """CO2e for people: tonnes, with as many decimals as the size deserves (3 significant
    digits, never more than 2 decimals); below 0.1 t in kilograms."""
    t = abs(kg) / 1000
    sign = "-" if kg < 0 else ""
    if t >= 100:
        return f"{sign}{t:,.0f} t"
    if t >= 10:
        return f"{sign}{t:,.1f} t"
    if t >= 0.1:
        return f"{sign}{t:,.2f} t"
    return f"{sign}{abs(kg):,.0f} kg"


def number(value: float | int, digits: int = 3) -> str:
    """A figure rounded to ``digits`` significant digits, with thousands separators."""
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    magnitude = abs(value)
    decimals = 0
    while magnitude < 10 ** (digits - 1) and decimals < 4:
        magnitude *= 10
        decimals += 1
    return f"{value:,.{decimals}f}"


def factor_value(value: float) -> str:
    """A factor as given in the factor file, every significant digit (0.0045, not 0.004)."""
    return repr(float(value)) if value % 1 else f"{value:,.0f}"


def headline(
    city: str, month: str, saving: Range, *, has_data: bool, closed: bool
) -> tuple[str, str]:
    """(verdict, sentence): saved or not, how much, how sure."""
    when = (
        f"In {month_name(month)}" if closed else f"So far in {month_name(month)} (month not closed)"
    )
    if not has_data:
        return "no_data", f"{when} no deliveries through the micro-hubs of {city} were recorded."
    basis = "compared with the carriers delivering directly by diesel van (a modelled comparison, not a measurement)"
    span = f"likely between {tonnes(saving.low)} and {tonnes(saving.high)}"
    if saving.low > 0:
        return "saved", (
            f"{when} the micro-hubs of {city} saved an estimated {tonnes(saving.central)} CO2e "
            f"({span}), {basis}."
        )
    if saving.high < 0:
        return "added", (
            f"{when} the micro-hubs of {city} did not save emissions: they added an estimated "
            f"{tonnes(-saving.central)} CO2e (likely between {tonnes(-saving.high)} and "
            f"{tonnes(-saving.low)}), {basis}."
        )
    return "uncertain", (
        f"{when} it is uncertain whether the micro-hubs of {city} saved emissions: the central "
        f"estimate is a saving of {tonnes(saving.central)} CO2e, but the saving is {span}, {basis}."
    )


SUMMARY_ROWS = (
    ("baseline_kgco2e", "Without the hubs (modelled): carriers' diesel vans from their depots"),
    ("actual_kgco2e", "With the hubs: depot-hub trips + hub operation + last mile"),
    ("depot_hub_kgco2e", "of which depot-hub trips"),
    ("hub_kgco2e", "of which hub operation (energy)"),
    ("last_mile_kgco2e", "of which last mile from the hubs"),
    ("saving_kgco2e", "Difference (positive: emissions avoided)"),
    ("actual_market_based_kgco2e", "With the hubs, market-based electricity"),
)

ACTIVITY_ROWS = (
    ("diesel_van_km_avoided_in_city", "Diesel van-km kept out of the city", "km"),
    ("van_trips_avoided_in_city", "Van trips into the city avoided", "trips"),
    ("diesel_van_km_avoided", "Diesel van-km avoided in all", "km"),
    ("baseline_van_km", "Baseline van-km (modelled)", "km"),
    ("depot_hub_km", "Depot-hub km", "km"),
    ("last_mile_km", "Last-mile km", "km"),
    ("electricity_kwh", "Electricity, last-mile vehicles", "kWh"),
    ("hub_kwh", "Electricity, hub operation", "kWh"),
    ("parcels", "Parcels handled", ""),
    ("stops", "Stops", ""),
    ("delivered_stops", "Stops delivered", ""),
    ("routes", "Routes", ""),
    ("consignments", "Consignments", ""),
    ("actual_g_per_parcel", "With the hubs, per parcel", "g CO2e"),
    ("baseline_g_per_parcel", "Without the hubs, per parcel", "g CO2e"),
    ("actual_g_per_tkm", "With the hubs, per tonne-km", "g CO2e"),
    ("baseline_g_per_tkm", "Without the hubs, per tonne-km", "g CO2e"),
)

BREAKDOWN_COLUMNS = (
    ("baseline_kgco2e", "Without hubs, t", "t"),
    ("actual_kgco2e", "With hubs, t", "t"),
    ("saving_kgco2e", "Difference, t", "t"),
    ("saving_pct", "Difference, %", "%"),
    ("diesel_van_km_avoided_in_city", "Van-km kept out of the city", "km"),
    ("nox_avoided_in_city_g", "NOx kept out, g", "g"),
    ("parcels", "Parcels", ""),
    ("actual_g_per_parcel", "g CO2e / parcel", ""),
)

BREAKDOWNS = (
    ("by_hub", "hub_name", "By hub"),
    ("by_carrier", "carrier_id", "By carrier"),
    ("by_vehicle_type", "vehicle_type", "By last-mile vehicle type"),
)

LEG_LABELS = {
    "baseline": "Without the hubs (counterfactual)",
    "depot_hub": "Depot-hub trips",
    "hub": "Hub operation",
    "last_mile": "Last mile from the hubs",
}


def cell(value: float | int, unit: str) -> str:
    if unit == "t":
        return number(value / 1000)
    if unit == "%":
        return f"{value:.1f}"
    return number(value)


def banners(
    factors, country, window, closed, groups, plan, hub_names, central
) -> list[model.Banner]:
    out = []
    if not closed:
        out.append(
            model.Banner(
                kind="open_month",
                text=f"{month_name(window.month)} is not closed yet (it closes two days after its last "
                "local midnight): the figures cover the routes so far and will change.",
            )
        )
    if not groups:
        out.append(
            model.Banner(
                kind="no_data", text="No deliveries through the hubs were recorded in this month."
            )
        )
    modelled = [
        hub_names.get(h, h)
        for h, (metered, days, _s, _m) in plan.items()
        if metered is None and days
    ]
    if modelled:
        out.append(
            model.Banner(
                kind="modelled_hub_energy",
                text="Hub energy is a configured default, not a meter reading, for: "
                + ", ".join(modelled)
                + ".",
            )
        )
    if groups and central["saving_kgco2e"] <= 0:
        out.append(
            model.Banner(
                kind="no_saving",
                text="In the central estimate the hubs did not reduce emissions this month.",
            )
        )
    if factors.overridden:
        out.append(
            model.Banner(
                kind="overridden_factors",
                text="Factors changed from the shipped file for this deployment: "
                + ", ".join(sorted(factors.overridden))
                + ".",
            )
        )
    placeholders = sorted(
        k for k, f in factors.factors.items() if f.source.startswith("PLACEHOLDER")
    )
    if placeholders:
        out.append(
            model.Banner(
                kind="placeholder_factors",
                text="Market-based figures use placeholder factors ("
                + ", ".join(placeholders)
                + ").",
            )
        )
    return out
