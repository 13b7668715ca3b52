"""The report as one standalone HTML page: charts as inline SVG (no CDN, no external file)."""

from __future__ import annotations

import html

from services.reporting import charts, sections
from services.reporting.model import EmissionsReport

CSS = (
    "body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem}"
    "td,th{border:1px solid #ccc;padding:.25rem .5rem;font-size:.88rem;vertical-align:top;text-align:left}"
    ".headline{font-size:1.25rem;font-weight:600;margin:1rem 0}"
    ".banner{background:#fff4d6;border-left:4px solid #d9a400;padding:.4rem .7rem;margin:.3rem 0}"
    ".meta{color:#555;font-size:.85rem}.appendix{font-size:.85rem}"
)


def _table(section: sections.Section) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in section.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in section.rows
    )
    note = f"<p class='meta'>{e(section.note)}</p>" if section.note else ""
    return f"<h2>{e(section.title)}</h2><table><tr>{head}</tr>{body}</table>{note}"


def to_html(report: EmissionsReport) -> bytes:
    e = html.escape
    svg = charts.all_charts(report, "svg")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(sections.title(report))}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(sections.title(report))}</h1>",
        f"<p class='meta'>{e(sections.subtitle(report))}</p>",
    ]
    if report.version.supersedes:
        parts.append(f"<div class='banner'>{e(sections.supersedes(report))}</div>")
    parts += [f"<div class='banner'>{e(b.text)}</div>" for b in report.banners]
    parts.append(f"<p class='headline'>{e(report.headline.sentence)}</p>")
    parts.append(_table(sections.summary(report)))
    parts.append(_table(sections.city(report)))
    parts.append("<h2>Trend</h2>" + svg["trend"].decode())
    parts.append(_table(sections.trend_table(report)))
    parts.append("<h2>Daily</h2>" + svg["daily"].decode())
    parts.append("<h2>By hub</h2>" + svg["by_hub"].decode())
    parts += [_table(s) for s in sections.breakdowns(report)]
    parts.append(_table(sections.hub_energy(report)))
    parts.append(_table(sections.split(report)))
    parts.append(_table(sections.sensitivity(report)))
    parts.append(_table(sections.quality(report)))
    parts.append(_table(sections.activity(report)))
    parts.append("<div class='appendix'><h2>Appendix: methodology</h2>")
    parts.append(
        f"<p>Methodology version {e(report.methodology.version)} ({e(report.methodology.standard)}), "
        f"in full in {e(report.methodology.document)}.</p><ol>"
    )
    parts += [f"<li>{e(step)}</li>" for step in report.methodology.steps]
    parts.append("</ol>")
    parts.append(_table(sections.assumptions(report)))
    parts.append(_table(sections.factors(report)))
    parts.append(
        f"<p>Inputs: {report.inputs.events} events, digest <code>{e(report.inputs.digest)}</code>.</p>"
    )
    parts.append("</div></body></html>\n")
    return "".join(parts).encode()
