"""The report's charts: matplotlib's object API (no pyplot global state), so they render
in a worker thread while the API serves other requests; SVG for HTML, PNG for the PDF."""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure

from services.reporting.model import EmissionsReport
from services.reporting.presentation import month_name

matplotlib.rcParams["svg.hashsalt"] = "microhub"  # stable element ids in the SVG

GREY, GREEN, RED = "#b0b0b0", "#2e8b57", "#b03a2e"


def _bytes(fig: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buffer, format=fmt, bbox_inches="tight", metadata=metadata, dpi=110)
    return buffer.getvalue()


def trend(report: EmissionsReport, fmt: str) -> bytes:
    """The last 12 months: without vs with the hubs, tonnes."""
    points = report.trend
    fig = Figure(figsize=(8, 3.0))
    ax = fig.subplots()
    x = range(len(points))
    ax.bar(
        [i - 0.2 for i in x],
        [p.baseline_kgco2e / 1000 for p in points],
        width=0.4,
        label="without the hubs (modelled)",
        color=GREY,
    )
    ax.bar(
        [i + 0.2 for i in x],
        [p.actual_kgco2e / 1000 for p in points],
        width=0.4,
        label="with the hubs",
        color=GREEN,
    )
    ax.set_xticks(list(x), [p.month[2:] for p in points], fontsize=7)
    ax.set_ylabel("t CO2e (well-to-wheel)")
    ax.set_title(f"Last 12 months, to {month_name(report.month)}")
    ax.legend(fontsize=8)
    return _bytes(fig, fmt)


def daily(report: EmissionsReport, fmt: str) -> bytes:
    days = report.daily
    fig = Figure(figsize=(8, 3.0))
    ax = fig.subplots()
    x = range(len(days))
    ax.bar(
        [i - 0.2 for i in x],
        [d.baseline_kgco2e for d in days],
        width=0.4,
        label="without the hubs (modelled)",
        color=GREY,
    )
    ax.bar(
        [i + 0.2 for i in x],
        [d.actual_kgco2e for d in days],
        width=0.4,
        label="with the hubs",
        color=GREEN,
    )
    ax.set_xticks(list(x), [d.date[-2:] for d in days], fontsize=7)
    ax.set_xlabel(f"day of {month_name(report.month)} ({report.city.timezone})")
    ax.set_ylabel("kg CO2e (well-to-wheel)")
    ax.set_title("Daily emissions")
    ax.legend(fontsize=8)
    return _bytes(fig, fmt)


def by_hub(report: EmissionsReport, fmt: str) -> bytes:
    hubs = report.by_hub
    fig = Figure(figsize=(8, 0.6 + 0.5 * max(1, len(hubs))))
    ax = fig.subplots()
    values = [h.saving_kgco2e / 1000 for h in hubs] or [0]
    ax.barh(
        [h.hub_name for h in hubs] or ["(no hub activity)"],
        values,
        color=[GREEN if v >= 0 else RED for v in values],
    )
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel("t CO2e avoided (negative: added)")
    ax.set_title("Difference by hub")
    return _bytes(fig, fmt)


def all_charts(report: EmissionsReport, fmt: str) -> dict[str, bytes]:
    return {"trend": trend(report, fmt), "daily": daily(report, fmt), "by_hub": by_hub(report, fmt)}
