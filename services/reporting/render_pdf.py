"""The report as a PDF: the same sections and charts as the HTML, page numbers ("page n of
m") and the report's identity in every footer.

ReportLab: maintained since 2000, pure-Python wheels with no system libraries (WeasyPrint
needs Pango and HarfBuzz), and its platypus layout splits long tables across pages with
repeated headers. Its ``invariant`` mode keeps the PDF free of timestamps, so the same
report gives the same bytes.
"""

from __future__ import annotations

import html
import io
from typing import Any

from services.reporting import charts, sections
from services.reporting.model import EmissionsReport


def to_pdf(report: EmissionsReport) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    footer = f"{report.city.name} {report.month} - report id {report.version.id}"

    class NumberedCanvas(Canvas):
        """Two passes: the page count is known only after the last page."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont("Helvetica", 7)
                self.setFillColor(colors.grey)
                self.drawString(1.6 * cm, 1.0 * cm, footer)
                self.drawRightString(
                    A4[0] - 1.6 * cm, 1.0 * cm, f"page {self._pageNumber} of {total}"
                )
                super().showPage()
            super().save()

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    cellstyle = styles["BodyText"].clone("cell", fontSize=7.5, leading=9)
    banner = styles["BodyText"].clone(
        "banner", backColor=colors.HexColor("#fff4d6"), borderPadding=3
    )
    headline = styles["BodyText"].clone(
        "headline", fontSize=12.5, leading=16, fontName="Helvetica-Bold"
    )
    e = html.escape
    png = charts.all_charts(report, "png")
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=sections.title(report),
        author="microhub",
        leftMargin=1.6 * cm,
        rightMargin=1.6 * cm,
        bottomMargin=1.8 * cm,
        invariant=1,
    )
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ]
    )

    def image(data: bytes, width: float) -> Image:
        img = Image(io.BytesIO(data))
        img.drawHeight = img.drawHeight * width / img.drawWidth
        img.drawWidth = width
        return img

    def table(
        section: sections.Section, style: Any = cellstyle, widths: list[float] | None = None
    ) -> list[Any]:
        rows = (
            [section.header, *section.rows]
            if section.rows
            else [section.header, ["(none)"] + [""] * (len(section.header) - 1)]
        )
        out = [
            Paragraph(e(section.title), styles["Heading3"]),
            Table(
                [[Paragraph(e(str(c)), style) for c in row] for row in rows],
                style=grid,
                repeatRows=1,
                hAlign="LEFT",
                colWidths=widths,
            ),
        ]
        if section.note:
            out.append(Paragraph(e(section.note), small))
        return out

    story: list[Any] = [
        Paragraph(e(sections.title(report)), styles["Title"]),
        Paragraph(e(sections.subtitle(report)), small),
        Spacer(1, 6),
    ]
    if report.version.supersedes:
        story.append(Paragraph(e(sections.supersedes(report)), banner))
    story += [Paragraph(e(b.text), banner) for b in report.banners]
    story += [Spacer(1, 6), Paragraph(e(report.headline.sentence), headline), Spacer(1, 4)]
    story += table(sections.summary(report))
    story += table(sections.city(report))
    story += [Paragraph("Trend", styles["Heading3"]), image(png["trend"], doc.width)]
    story += table(sections.trend_table(report))
    story += [image(png["daily"], doc.width), image(png["by_hub"], doc.width * 0.8)]
    for section in sections.breakdowns(report):
        story += table(section)
    story += table(sections.hub_energy(report))
    story += table(sections.split(report))
    story += table(sections.sensitivity(report))
    story += table(sections.quality(report))
    story += table(sections.activity(report))
    story.append(Paragraph("Appendix: methodology", styles["Heading2"]))
    story.append(
        Paragraph(
            e(
                f"Methodology version {report.methodology.version} ({report.methodology.standard}), "
                f"in full in {report.methodology.document}."
            ),
            styles["BodyText"],
        )
    )
    story += [
        Paragraph(f"{i}. {e(step)}", styles["BodyText"])
        for i, step in enumerate(report.methodology.steps, 1)
    ]
    story += table(sections.assumptions(report), small)
    widths = [2.6, 1.0, 0.9, 0.9, 1.4, 0.9, 0.8, 0.8, 0.8, 3.4, 3.0]
    story += table(sections.factors(report), small, [w * cm for w in widths])
    story.append(
        Paragraph(
            e(f"Inputs: {report.inputs.events} events, digest {report.inputs.digest}."), small
        )
    )
    doc.build(story, canvasmaker=NumberedCanvas)
    return buffer.getvalue()
