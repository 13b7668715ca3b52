"""The report in CSV, HTML (charts inline) and PDF (the same charts).

Charts: matplotlib (Agg, no display), embedded as inline SVG in HTML and as PNG in the
PDF: no CDN, no external file. PDF: ReportLab (pure Python wheels, no system libraries,
long-maintained; see docs/methodology.md, "Report formats").
"""

from __future__ import annotations

import csv
import html
import io
from typing import Any

import matplotlib
from matplotlib.figure import Figure

# Figure objects without pyplot: no global state, so reports can render in worker threads.
matplotlib.rcParams["svg.hashsalt"] = "microhub"  # stable element ids in the SVG

FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}

SUMMARY_ROWS = (
    ("baseline_kgco2e", "Baseline: direct delivery by diesel van", "kg CO2e"),
    ("actual_kgco2e", "Actual: depot-hub trips + last mile from the hub", "kg CO2e"),
    ("saving_kgco2e", "Saving", "kg CO2e"),
    ("saving_pct", "Saving, share of baseline", "%"),
    ("diesel_van_km_avoided", "Diesel van-km kept out", "km"),
    ("nox_avoided_g", "NOx kept out (diesel exhaust)", "g"),
    ("pm25_avoided_g", "PM2.5 kept out (diesel exhaust)", "g"),
    ("depot_hub_kgco2e", "of which depot-hub trips", "kg CO2e"),
    ("last_mile_kgco2e", "of which last mile", "kg CO2e"),
    ("last_mile_km", "Last-mile km", "km"),
    ("electricity_kwh", "Electricity drawn from the grid", "kWh"),
    ("consignments", "Consignments", ""),
    ("routes", "Routes", ""),
    ("stops", "Stops", ""),
    ("delivered_stops", "Delivered stops", ""),
    ("parcels", "Parcels", ""),
)

BREAKDOWN_COLUMNS = (
    "baseline_kgco2e",
    "actual_kgco2e",
    "saving_kgco2e",
    "saving_pct",
    "diesel_van_km_avoided",
    "nox_avoided_g",
    "pm25_avoided_g",
    "stops",
)

# What people read in the HTML and PDF tables (CSV and JSON keep the machine names).
COLUMN_LABELS = {
    "hub_id": "Hub",
    "carrier_id": "Carrier",
    "vehicle_type": "Last-mile vehicle",
    "baseline_kgco2e": "Baseline kg CO2e",
    "actual_kgco2e": "Actual kg CO2e",
    "saving_kgco2e": "Saving kg CO2e",
    "saving_pct": "Saving %",
    "diesel_van_km_avoided": "Diesel van-km avoided",
    "nox_avoided_g": "NOx avoided g",
    "pm25_avoided_g": "PM2.5 avoided g",
    "stops": "Stops",
}


def column_label(column: str) -> str:
    return COLUMN_LABELS.get(column, column.replace("_", " "))


BREAKDOWNS = (
    ("by_hub", "hub_id", "By hub"),
    ("by_carrier", "carrier_id", "By carrier"),
    ("by_vehicle_type", "vehicle_type", "By last-mile vehicle type"),
)


# --- charts ------------------------------------------------------------------------------


def _figure_bytes(fig: Any, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buffer, format=fmt, bbox_inches="tight", metadata=metadata, dpi=110)
    return buffer.getvalue()


def charts(report: dict[str, Any], fmt: str) -> dict[str, bytes]:
    """Daily baseline vs actual CO2e, and the saving by hub."""
    days = report["daily"]
    labels = [d["date"][-2:] for d in days]
    x = range(len(days))
    fig = Figure(figsize=(8, 3.2))
    ax = fig.subplots()
    ax.bar(
        [i - 0.2 for i in x],
        [d["baseline_kgco2e"] for d in days],
        width=0.4,
        label="baseline (diesel van)",
        color="#b0b0b0",
    )
    ax.bar(
        [i + 0.2 for i in x],
        [d["actual_kgco2e"] for d in days],
        width=0.4,
        label="actual (with the hub)",
        color="#2e8b57",
    )
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_xlabel(f"day of {report['month']} ({report['city']['timezone']})")
    ax.set_ylabel("kg CO2e (WTW)")
    ax.set_title("Daily emissions: baseline vs actual")
    ax.legend(fontsize=8)
    daily = _figure_bytes(fig, fmt)

    hubs = report["by_hub"]
    fig = Figure(figsize=(8, 0.6 + 0.5 * max(1, len(hubs))))
    ax = fig.subplots()
    ax.barh(
        [h["hub_name"] for h in hubs] or ["(no hub activity)"],
        [h["saving_kgco2e"] for h in hubs] or [0],
        color="#2e8b57",
    )
    ax.set_xlabel("kg CO2e saved")
    ax.set_title("Saving by hub")
    by_hub = _figure_bytes(fig, fmt)
    return {"daily": daily, "by_hub": by_hub}


# --- CSV ---------------------------------------------------------------------------------


def to_csv(report: dict[str, Any]) -> bytes:
    """Long format: section, key, metric, value, unit - one table a spreadsheet can pivot,
    followed by the factor table and the methodology."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        ["section", "key", "metric", "value", "unit", "source", "year", "confidence", "note"]
    )
    city = report["city"]["id"]
    for field, _label, unit in SUMMARY_ROWS:
        w.writerow(["total", city, field, report["totals"][field], unit, "", "", "", ""])
    for field, value in sorted(report["data_basis"].items()):
        w.writerow(["data_basis", city, field, value, "share", "", "", "", ""])
    for section, key_field, _title in BREAKDOWNS:
        for row in report[section]:
            for field in sorted(k for k in row if k not in {key_field, "hub_name"}):
                w.writerow([section, row[key_field], field, row[field], "", "", "", "", ""])
    for row in report["daily"]:
        for field in ("baseline_kgco2e", "actual_kgco2e", "saving_kgco2e", "diesel_van_km_avoided"):
            w.writerow(["daily", row["date"], field, row[field], "", "", "", "", ""])
    for f in report["factors"]["table"]:
        w.writerow(
            [
                "factor",
                f["key"],
                "value",
                f["value"],
                f["unit"],
                f["source"],
                f["year"],
                f["confidence"],
                f["note"],
            ]
        )
    for i, step in enumerate(report["methodology"]["steps"], 1):
        w.writerow(["methodology", i, "step", step, "", "", "", "", ""])
    w.writerow(["inputs", "events", "count", report["inputs"]["events"], "", "", "", "", ""])
    w.writerow(["inputs", "digest", "sha256", report["inputs"]["digest"], "", "", "", "", ""])
    return out.getvalue().encode()


# --- HTML --------------------------------------------------------------------------------


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _factor(value: float) -> str:
    """A factor as given in the factor file, every significant digit (0.0045, not 0.004)."""
    return repr(float(value)) if value % 1 else f"{value:,.0f}"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;margin:1rem 0}"
    "td,th{border:1px solid #ccc;padding:.25rem .5rem;font-size:.9rem;vertical-align:top}"
    "td.n{text-align:right}.low{color:#a33}"
)


def _title(report: dict[str, Any]) -> str:
    return f"Emissions savings of the micro-hubs - {report['city']['name']}, {report['month']}"


def to_html(report: dict[str, Any]) -> bytes:
    e = html.escape
    svg = charts(report, "svg")
    t = report["totals"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(_title(report))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(_title(report))}</h1>",
        f"<p>Period {e(report['period']['start'])} to {e(report['period']['end'])} "
        f"({e(report['status'])} month). Inputs: {report['inputs']['events']} events, digest "
        f"<code>{e(report['inputs']['digest'])}</code>.</p>",
        "<h2>Summary</h2><table>",
    ]
    for field, label, unit in SUMMARY_ROWS:
        parts.append(
            f"<tr><th>{e(label)}</th><td class='n'>{_num(t[field])}</td><td>{e(unit)}</td></tr>"
        )
    parts.append(
        "</table><p>Data basis: "
        + ", ".join(
            f"{e(k.replace('_', ' '))} {v:.1%}" for k, v in sorted(report["data_basis"].items())
        )
        + "</p>"
    )
    parts.append("<h2>Daily</h2>" + svg["daily"].decode())
    parts.append("<h2>By hub</h2>" + svg["by_hub"].decode())
    for section, key_field, title in BREAKDOWNS:
        parts.append(
            f"<h2>{e(title)}</h2><table><tr><th>{e(column_label(key_field))}</th>"
            + "".join(f"<th>{e(column_label(c))}</th>" for c in BREAKDOWN_COLUMNS)
            + "</tr>"
        )
        for row in report[section]:
            parts.append(
                f"<tr><td>{e(str(row[key_field]))}</td>"
                + "".join(f"<td class='n'>{_num(row[c])}</td>" for c in BREAKDOWN_COLUMNS)
                + "</tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Methodology</h2><ol>")
    parts += [f"<li>{e(step)}</li>" for step in report["methodology"]["steps"]]
    parts.append("</ol>")
    f = report["factors"]
    parts.append(
        f"<h2>Emission factors</h2><p>Version {e(f['version'])}, "
        f"digest <code>{e(f['digest'])}</code>; "
        "values marked <span class='low'>low</span> confidence must be verified.</p><table>"
        "<tr><th>factor</th><th>value</th><th>unit</th><th>source</th><th>year</th>"
        "<th>confidence</th><th>note</th></tr>"
    )
    for row in f["table"]:
        cls = " class='low'" if row["confidence"] == "low" else ""
        parts.append(
            f"<tr><td>{e(row['key'])}{' (overridden)' if row['overridden'] else ''}</td>"
            f"<td class='n'>{_factor(row['value'])}</td><td>{e(row['unit'])}</td>"
            f"<td>{e(row['source'])}</td>"
            f"<td>{row['year']}</td><td{cls}>{e(row['confidence'])}</td><td>{e(row['note'])}</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "".join(parts).encode()


# --- PDF ---------------------------------------------------------------------------------


def to_pdf(report: dict[str, Any]) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    e = html.escape
    png = charts(report, "png")
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=_title(report),
        author="microhub",
        leftMargin=1.6 * cm,
        rightMargin=1.6 * cm,
        invariant=1,
    )
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
            ("FONTSIZE", (0, 0), (-1, -1), 7.5),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )

    def image(data: bytes, width: float) -> Image:
        img = Image(io.BytesIO(data))
        img.drawHeight = img.drawHeight * width / img.drawWidth
        img.drawWidth = width
        return img

    t = report["totals"]
    story: list[Any] = [
        Paragraph(e(_title(report)), styles["Title"]),
        Paragraph(
            e(
                f"Period {report['period']['start']} to {report['period']['end']} "
                f"({report['status']} month). Inputs: {report['inputs']['events']} events, "
                f"digest {report['inputs']['digest']}"
            ),
            small,
        ),
        Spacer(1, 6),
        Table(
            [[label, _num(t[field]), unit] for field, label, unit in SUMMARY_ROWS],
            style=grid,
            hAlign="LEFT",
        ),
        Spacer(1, 6),
        image(png["daily"], doc.width),
        image(png["by_hub"], doc.width * 0.8),
    ]
    for section, key_field, title in BREAKDOWNS:
        rows = [[column_label(key_field), *(column_label(c) for c in BREAKDOWN_COLUMNS)]] + [
            [str(r[key_field]), *(_num(r[c]) for c in BREAKDOWN_COLUMNS)] for r in report[section]
        ]
        story += [
            Paragraph(e(title), styles["Heading3"]),
            Table([[Paragraph(e(str(c)), small) for c in row] for row in rows], style=grid),
        ]
    story.append(Paragraph("Methodology", styles["Heading2"]))
    story += [
        Paragraph(f"{i}. {e(step)}", styles["BodyText"])
        for i, step in enumerate(report["methodology"]["steps"], 1)
    ]
    f = report["factors"]
    story.append(Paragraph("Emission factors", styles["Heading2"]))
    story.append(
        Paragraph(
            e(
                f"Version {f['version']}, digest {f['digest']}. Values of low "
                "confidence must be verified before use."
            ),
            small,
        )
    )
    header = ["factor", "value", "unit", "source", "year", "conf.", "note"]
    rows = [header] + [
        [
            r["key"] + (" (overridden)" if r["overridden"] else ""),
            _factor(r["value"]),
            r["unit"],
            r["source"],
            str(r["year"]),
            r["confidence"],
            r["note"],
        ]
        for r in f["table"]
    ]
    widths = [3.2 * cm, 1.3 * cm, 1.7 * cm, 5.2 * cm, 1.0 * cm, 1.1 * cm, 4.3 * cm]
    story.append(
        Table(
            [[Paragraph(e(str(c)), small) for c in row] for row in rows],
            colWidths=widths,
            style=grid,
            repeatRows=1,
        )
    )
    doc.build(story)
    return buffer.getvalue()


def render(report: dict[str, Any], fmt: str) -> bytes:
    from services.reporting.report import to_json

    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    if fmt == "pdf":
        return to_pdf(report)
    raise ValueError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
