"""The report's sections as plain rows (title, header, rows of strings), shared by the HTML
and the PDF so that both say the same thing in the same order."""

from __future__ import annotations

from dataclasses import dataclass

from services.reporting import presentation as pr
from services.reporting.model import EmissionsReport


@dataclass(frozen=True)
class Section:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def title(report: EmissionsReport) -> str:
    return f"Emissions of the micro-hubs - {report.city.name}, {pr.month_name(report.month)}"


def subtitle(report: EmissionsReport) -> str:
    v = report.version
    version = (
        f"version {v.number} of this month, published {v.published_at}"
        if v.number is not None
        else "provisional (month not closed)"
    )
    until = f"; data until {report.data_until}" if report.data_until else ""
    return (
        f"Period {report.period.start} to {report.period.end}; {report.status} month{until}. "
        f"Generated {report.generated_at}; {version}; report id {v.id}."
    )


def supersedes(report: EmissionsReport) -> str:
    s = report.version.supersedes
    if s is None:
        return ""
    return (
        f"This version replaces version {s.number} (published {s.published_at}) because these "
        f"changed: {', '.join(s.changed)}."
    )


def summary(report: EmissionsReport) -> Section:
    t, r = report.totals, report.ranges
    ranged = {
        "saving_kgco2e": r.saving_kgco2e,
        "baseline_kgco2e": r.baseline_kgco2e,
        "actual_kgco2e": r.actual_kgco2e,
    }
    rows = []
    for field, label in pr.SUMMARY_ROWS:
        value = getattr(t, field)
        span = ranged.get(field)
        rows.append(
            [
                label,
                pr.tonnes(value),
                f"{pr.tonnes(span.low)} to {pr.tonnes(span.high)}" if span else "",
            ]
        )
    return Section("Summary (CO2e, well-to-wheel)", ["", "central", "likely range"], rows)


def city(report: EmissionsReport) -> Section:
    t, r = report.totals, report.ranges
    return Section(
        "Kept out of the city",
        ["", "value", "likely range"],
        [
            ["Diesel van-km kept out of the city", pr.number(t.diesel_van_km_avoided_in_city), ""],
            ["Van trips into the city avoided", pr.number(t.van_trips_avoided_in_city), ""],
            [
                "NOx kept out of the city (diesel exhaust), g",
                pr.number(t.nox_avoided_in_city_g),
                f"{pr.number(r.nox_avoided_in_city_g.low)} to {pr.number(r.nox_avoided_in_city_g.high)}",
            ],
            [
                "PM2.5 kept out of the city (diesel exhaust), g",
                pr.number(t.pm25_avoided_in_city_g),
                f"{pr.number(r.pm25_avoided_in_city_g.low)} to {pr.number(r.pm25_avoided_in_city_g.high)}",
            ],
            [
                "Diesel van-km avoided in all (in and out of the city)",
                pr.number(t.diesel_van_km_avoided),
                "",
            ],
        ],
        "In-city km are the part of each leg inside the city boundary (see the appendix); the "
        "hubs' own routes count in the city in full. Real-world NOx of diesel vans varies "
        "several-fold, hence the range.",
    )


def split(report: EmissionsReport) -> Section:
    t = report.totals
    return Section(
        "Tank-to-wheel and well-to-tank",
        ["", "TTW (exhaust)", "WTT (fuel and power supply)", "WTW (total)"],
        [
            [
                "Without the hubs",
                pr.tonnes(t.baseline_ttw_kgco2e),
                pr.tonnes(t.baseline_wtt_kgco2e),
                pr.tonnes(t.baseline_kgco2e),
            ],
            [
                "With the hubs",
                pr.tonnes(t.actual_ttw_kgco2e),
                pr.tonnes(t.actual_wtt_kgco2e),
                pr.tonnes(t.actual_kgco2e),
            ],
        ],
    )


def breakdowns(report: EmissionsReport) -> list[Section]:
    out = []
    for section, key_field, heading in pr.BREAKDOWNS:
        rows = [
            [str(getattr(item, key_field))]
            + [pr.cell(getattr(item, f), unit) for f, _l, unit in pr.BREAKDOWN_COLUMNS]
            for item in getattr(report, section)
        ]
        out.append(Section(heading, [""] + [label for _f, label, _u in pr.BREAKDOWN_COLUMNS], rows))
    return out


def hub_energy(report: EmissionsReport) -> Section:
    return Section(
        "Hub operation (energy)",
        ["hub", "basis", "kWh", "days", "kg CO2e", "market-based kg", "parcels", "g CO2e/parcel"],
        [
            [
                h.hub_name,
                h.basis,
                pr.number(h.kwh),
                str(h.days) if h.basis == "modelled" else "",
                pr.number(h.kgco2e),
                pr.number(h.market_based_kgco2e),
                f"{h.parcels:,}",
                pr.number(h.g_per_parcel),
            ]
            for h in report.hub_energy
        ],
        "Metered: kWh the operator reported for the month. Modelled: the configured default per "
        "day. Allocated to the carriers by parcels handled.",
    )


def sensitivity(report: EmissionsReport, top: int = 8) -> Section:
    return Section(
        "Uncertainty: what moves the difference most",
        ["parameter (at its low / high end)", "difference at low", "difference at high", "swing"],
        [
            [
                s.parameter,
                pr.tonnes(s.saving_at_low_kgco2e),
                pr.tonnes(s.saving_at_high_kgco2e),
                pr.tonnes(s.swing_kgco2e),
            ]
            for s in report.sensitivity[:top]
        ],
        "Each parameter is moved alone to the ends of its range in the factor file; the likely "
        "range combines them (root sum of squares).",
    )


def quality(report: EmissionsReport) -> Section:
    return Section(
        "Data quality (ISO 14083): share of primary data",
        ["leg", "primary data", "basis"],
        [[pr.LEG_LABELS[q.leg], f"{q.primary_share:.0%}", q.basis] for q in report.data_quality],
    )


def activity(report: EmissionsReport) -> Section:
    t = report.totals.model_dump()
    return Section(
        "Activity and intensity",
        ["", "value", "unit"],
        [[label, pr.number(t[field]), unit] for field, label, unit in pr.ACTIVITY_ROWS],
    )


def trend_table(report: EmissionsReport) -> Section:
    return Section(
        "Last 12 months (t CO2e; recomputed with this report's factors)",
        ["month", "without hubs", "with hubs", "difference", "parcels", ""],
        [
            [
                p.month,
                pr.number(p.baseline_kgco2e / 1000),
                pr.number(p.actual_kgco2e / 1000),
                pr.number(p.saving_kgco2e / 1000),
                f"{p.parcels:,}",
                "" if p.status == "closed" else "open",
            ]
            for p in report.trend
        ],
    )


def factors(report: EmissionsReport) -> Section:
    return Section(
        "Emission factors",
        [
            "factor",
            "value",
            "low",
            "high",
            "unit",
            "boundary",
            "GWP",
            "year",
            "conf.",
            "source",
            "note",
        ],
        [
            [
                f.key + (" (overridden)" if f.overridden else ""),
                pr.factor_value(f.value),
                "" if f.low is None else pr.factor_value(f.low),
                "" if f.high is None else pr.factor_value(f.high),
                f.unit,
                f.boundary,
                f.gwp,
                str(f.year),
                f.confidence,
                f.source,
                f.note,
            ]
            for f in report.factors.table
        ],
        f"Factor file version {report.factors.version}, digest {report.factors.digest}. Values of "
        "low confidence must be verified before use.",
    )


def assumptions(report: EmissionsReport) -> Section:
    rows = [[k, str(v)] for k, v in report.factors.assumptions.items()]
    b = report.factors.boundary
    if b is not None:
        rows.append(["city boundary", f"{b.vertices} vertices; {b.source} ({b.year}). {b.note}"])
    return Section("Assumptions", ["", ""], rows)
