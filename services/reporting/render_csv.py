"""The report as one long CSV table a spreadsheet can pivot: section, key, metric, value,
unit, then the factor columns (source, year, boundary, gwp, confidence, note)."""

from __future__ import annotations

import csv
import io

from services.reporting.model import EmissionsReport, Metrics

HEADER = [
    "section",
    "key",
    "metric",
    "value",
    "unit",
    "low",
    "high",
    "source",
    "year",
    "boundary",
    "gwp",
    "confidence",
    "note",
]
KEY_FIELDS = {"hub_id", "hub_name", "carrier_id", "vehicle_type", "date"}


def _unit(metric: str) -> str:
    for suffix, unit in (
        ("_kgco2e", "kg CO2e"),
        ("_km", "km"),
        ("_kwh", "kWh"),
        ("_g", "g"),
        ("_pct", "%"),
        ("_per_parcel", "g CO2e/parcel"),
        ("_per_tkm", "g CO2e/tkm"),
        ("_tkm", "t.km"),
        ("_t", "t"),
        ("_in_city", ""),
    ):
        if metric.endswith(suffix):
            return unit
    return ""


def to_csv(report: EmissionsReport) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)

    def row(
        section: str, key: object, metric: str, value: object, unit: str = "", **rest: object
    ) -> None:
        w.writerow(
            [
                section,
                key,
                metric,
                value,
                unit,
                rest.get("low", ""),
                rest.get("high", ""),
                *(
                    rest.get(k, "")
                    for k in ("source", "year", "boundary", "gwp", "confidence", "note")
                ),
            ]
        )

    city = report.city.id
    row("report", city, "month", report.month)
    row("report", city, "status", report.status)
    row("report", city, "generated_at", report.generated_at)
    row("report", city, "headline", report.headline.sentence)
    for banner in report.banners:
        row("banner", banner.kind, "text", banner.text)
    for metric, value in report.totals.model_dump().items():
        row("total", city, metric, value, _unit(metric))
    for metric, r in report.ranges.model_dump().items():
        row("range", city, metric, r["central"], _unit(metric), low=r["low"], high=r["high"])
    for s in report.sensitivity:
        row(
            "sensitivity",
            s.parameter,
            "saving_kgco2e",
            s.swing_kgco2e,
            "kg CO2e",
            low=s.saving_at_low_kgco2e,
            high=s.saving_at_high_kgco2e,
            note=" ".join(s.keys),
        )
    for leg in report.data_quality:
        row("data_quality", leg.leg, "primary_share", leg.primary_share, "share", note=leg.basis)
    for metric, value in sorted(report.data_basis.items()):
        row("data_basis", city, metric, value, "share")
    for h in report.hub_energy:
        for metric in ("kwh", "days", "kgco2e", "market_based_kgco2e", "parcels", "g_per_parcel"):
            row("hub_energy", h.hub_id, metric, getattr(h, metric), _unit(metric), note=h.basis)
    for section, key_field in (
        ("by_hub", "hub_id"),
        ("by_carrier", "carrier_id"),
        ("by_vehicle_type", "vehicle_type"),
        ("daily", "date"),
    ):
        for item in getattr(report, section):
            for metric in Metrics.model_fields:
                row(section, getattr(item, key_field), metric, getattr(item, metric), _unit(metric))
    for t in report.trend:
        for metric in ("baseline_kgco2e", "actual_kgco2e", "saving_kgco2e", "parcels"):
            row("trend", t.month, metric, getattr(t, metric), _unit(metric), note=t.status)
    for f in report.factors.table:
        row(
            "factor",
            f.key,
            "value",
            f.value,
            f.unit,
            low="" if f.low is None else f.low,
            high="" if f.high is None else f.high,
            source=f.source,
            year=f.year,
            boundary=f.boundary,
            gwp=f.gwp,
            confidence=f.confidence,
            note=f.note + (" (overridden)" if f.overridden else ""),
        )
    for key, value in report.factors.assumptions.items():
        row("assumption", key, "value", value)
    for i, step in enumerate(report.methodology.steps, 1):
        row("methodology", i, "step", step)
    row("methodology", "version", "version", report.methodology.version)
    row("inputs", "events", "count", report.inputs.events)
    row("inputs", "digest", "sha256", report.inputs.digest)
    row("version", "id", "sha256", report.version.id)
    row(
        "version",
        "number",
        "number",
        "" if report.version.number is None else report.version.number,
    )
    return out.getvalue().encode()
