"""The report in every format, from the one typed model: JSON (model.to_json), CSV
(render_csv), HTML with inline SVG charts (render_html), PDF with the same charts
(render_pdf)."""

from __future__ import annotations

from services.reporting.model import EmissionsReport, to_json

FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


def render(report: EmissionsReport, fmt: str) -> bytes:
    # imported here: matplotlib and reportlab cost every `microhub` command ~0.5 s
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        from services.reporting.render_csv import to_csv

        return to_csv(report)
    if fmt == "html":
        from services.reporting.render_html import to_html

        return to_html(report)
    if fmt == "pdf":
        from services.reporting.render_pdf import to_pdf

        return to_pdf(report)
    raise ValueError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
