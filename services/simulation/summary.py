"""The outcome of a simulation: what the topics said, and the monthly reports fetched
from the reporting service's public HTTP API (written to disk in every format)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from services.simulation.observed import Observed

FORMATS = ("json", "csv", "pdf", "html")


@dataclass
class CityMonth:
    city: str
    month: str
    totals: dict[str, Any]
    files: list[Path] = field(default_factory=list)


async def fetch_reports(
    observed: Observed, *, api_url: str, api_key: str, out_dir: Path
) -> list[CityMonth]:
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any request
    headers = {"Authorization": f"Bearer {api_key}"}

    async def fetch(client: httpx.AsyncClient, city: str, month: str) -> CityMonth:
        url = f"/v1/cities/{city}/reports/emissions/{month}"
        item = CityMonth(city, month, {})
        for fmt in FORMATS:
            response = await client.get(url, params={"format": fmt})
            if response.status_code != 200:
                raise RuntimeError(
                    f"GET {url}?format={fmt} answered {response.status_code}: {response.text[:300]}"
                )
            path = out_dir / f"emissions-{city}-{month}.{fmt}"
            path.write_bytes(response.content)
            item.files.append(path)
            if fmt == "json":
                item.totals = json.loads(response.content)["totals"]
        return item

    wanted = [
        (c, m) for c in sorted(observed.months_by_city) for m in sorted(observed.months_by_city[c])
    ]
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=120) as client:
        # the city-months at once: the server renders charts in threads
        return list(await asyncio.gather(*(fetch(client, c, m) for c, m in wanted)))


def as_dict(observed: Observed, reports: list[CityMonth]) -> dict[str, Any]:
    """The summary as plain data (printed as a table, written as summary.json)."""
    saved: dict[str, float] = {}
    for r in reports:
        saved[r.city] = round(saved.get(r.city, 0.0) + float(r.totals.get("saving_kgco2e", 0)), 3)
    return {
        "bookings": {
            "confirmed": observed.booking.get("confirmed", 0),
            "rejected": dict(sorted(observed.rejected.items())),
            "commands_rejected": dict(sorted(observed.command_rejected.items())),
            "cancelled": observed.booking.get("cancelled", 0),
            "cancelled_late": observed.late_cancellations,
            "checked_in": observed.booking.get("consignment_checked_in", 0),
            "no_shows": observed.booking.get("no_show", 0),
        },
        "routes": {
            "planned": observed.routes_planned,
            "completed": observed.routes_completed,
            "stops_failed": observed.stops_failed,
            "stops_returned": observed.stops_returned,
            "stop_updates": dict(sorted(observed.stop_updates.items())),
            "proofs_to_carriers": observed.proofs_to_carriers,
            "km_by_city": {c: round(k, 1) for c, k in sorted(observed.km_by_city.items())},
        },
        "co2e_saved_kg_by_city": saved,
        "reports": {
            f"{r.city}/{r.month}": {
                "totals": r.totals,
                "files": [str(p) for p in r.files],
            }
            for r in reports
        },
        "dead_lettered": dict(sorted(observed.dead_lettered.items())),
        "messages_sent": observed.sent,
    }


def print_summary(console: Console, summary: dict[str, Any], title: str) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    b, r = summary["bookings"], summary["routes"]
    table.add_row("bookings confirmed", str(b["confirmed"]))
    rejected = sum(b["rejected"].values())
    detail = ", ".join(f"{k}: {v}" for k, v in b["rejected"].items())
    table.add_row("bookings rejected", f"{rejected}" + (f" ({detail})" if detail else ""))
    cmd = ", ".join(f"{k}: {v}" for k, v in b["commands_rejected"].items())
    table.add_row(
        "commands rejected",
        f"{sum(b['commands_rejected'].values())}" + (f" ({cmd})" if cmd else ""),
    )
    table.add_row("cancellations (late)", f"{b['cancelled']} ({b['cancelled_late']})")
    table.add_row("checked in / no-shows", f"{b['checked_in']} / {b['no_shows']}")
    table.add_row("routes planned / completed", f"{r['planned']} / {r['completed']}")
    # a failed stop is planned again, and returned to the carrier after its last attempt
    table.add_row("failed stop attempts / returned", f"{r['stops_failed']} / {r['stops_returned']}")
    updates = ", ".join(f"{k}: {v}" for k, v in r["stop_updates"].items())
    table.add_row(
        "stop updates to carriers",
        f"{sum(r['stop_updates'].values())}" + (f" ({updates})" if updates else ""),
    )
    table.add_row("proofs of delivery to carriers", str(r["proofs_to_carriers"]))
    for city, km in r["km_by_city"].items():
        table.add_row(f"last-mile km, {city}", f"{km:.1f}")
    # per city and month, as the report pages show it (the difference to the modelled
    # baseline: negative when the hubs added CO2e)
    for key, report in sorted(summary["reports"].items()):
        city, month = key.split("/")
        kg = float(report["totals"].get("saving_kgco2e", 0))
        table.add_row(f"CO2e saved, {city} {month}", f"{kg:.1f} kg")
    dlq = summary["dead_lettered"]
    table.add_row(
        "dead-lettered (malformed on purpose)",
        f"{sum(dlq.values())}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in dlq.items())})" if dlq else ""),
    )
    table.add_row("messages sent", str(summary["messages_sent"]))
    console.print(table)
