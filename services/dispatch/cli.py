"""``microhub queue --hub <id>``: the live dispatch queue of a hub in the terminal.

Follows the hub's Server-Sent Events stream with httpx and re-renders with rich.Live; the
same JSON the HTTP snapshot returns is what :func:`render_queue` draws.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

app = typer.Typer(help="Dispatch: the live queue of a hub.")

STATUS_STYLE = {
    "expected": "dim",
    "waiting": "yellow",
    "failed": "red",
    "available": "green",
    "free": "green",
    "charging": "cyan",
    "loading": "blue",
    "on_route": "magenta",
    "off_shift": "dim",
    "planned": "blue",
    "running": "magenta",
}


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None


async def sse_events(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """Parse a text/event-stream response (comments such as pings are skipped)."""
    data: list[str]
    event, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield ServerSentEvent(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


def _styled(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _time(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%H:%M") if iso else ""


def render_queue(snapshot: dict[str, Any], *, max_stops: int = 25) -> RenderableType:
    """The dispatch queue of one hub as a rich renderable."""
    hub = snapshot.get("hub") or {}
    title = f"{snapshot['hub_id']}" + (f" — {hub['name']}" if hub.get("name") else "")
    stops = snapshot.get("stops", [])
    waiting = [s for s in stops if s["status"] in ("waiting", "failed")]
    expected = [s for s in stops if s["status"] == "expected"]
    header = Text.assemble(
        (f"clock {snapshot.get('clock') or '-'}", "bold"),
        f"   waves {snapshot.get('waves', 0)}",
        f"   last wave {_time(snapshot.get('last_wave_at')) or '-'}",
        f"   waiting {len(waiting)} stops / {sum(s['parcels'] for s in waiting)} parcels",
        f"   expected {len(expected)} stops",
    )

    queue = Table(title="Waiting stops", expand=True, title_justify="left")
    for column in ("booking / stop", "status", "parcels", "kg", "tries", "reason"):
        queue.add_column(column, overflow="fold")
    for s in waiting[:max_stops]:
        queue.add_row(
            f"{s['booking_id'][:8]}/{s['stop_id']}",
            _styled(s["status"]),
            str(s["parcels"]),
            f"{s['weight_kg']:.1f}",
            str(s["attempts"]),
            s.get("reason") or "",
        )
    if len(waiting) > max_stops:
        queue.add_row(f"… {len(waiting) - max_stops} more", "", "", "", "", "")

    fleet = Table(title="Vehicles", expand=True, title_justify="left")
    for column in ("vehicle", "type", "status", "battery", "route / why not free"):
        fleet.add_column(column, overflow="fold")
    for v in snapshot.get("vehicles", []):
        battery = "" if v.get("battery_pct") is None else f"{v['battery_pct']:.0f} %"
        fleet.add_row(
            v["vehicle_id"],
            v["type"],
            _styled(v.get("state", v["status"])),
            battery,
            v.get("route_id") or v.get("why_not_free") or "free",
        )

    routes = Table(title="Routes planned and running", expand=True, title_justify="left")
    for column in ("route", "status", "stops", "parcels", "kg", "km", "min", "solver"):
        routes.add_column(column, overflow="fold")
    for r in snapshot.get("routes", []):
        routes.add_row(
            r["route_id"],
            _styled(r["status"]),
            str(len(r["stops"])),
            str(r["load_parcels"]),
            f"{r['load_kg']:.0f}",
            f"{r['planned_km']:.1f}",
            f"{r['planned_duration_min']:.0f}",
            r["solver"],
        )
    return Panel(Group(header, queue, fleet, routes), title=title, border_style="cyan")


async def watch_queue(
    base_url: str,
    hub: str,
    api_key: str,
    *,
    stop_after: int | None = None,
    live: Live | None = None,
) -> int:
    """Follow the hub's SSE stream and re-render on every change; returns the number of
    events rendered (``stop_after`` ends the watch early, for tests and scripts)."""
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
    url = f"{base_url.rstrip('/')}/v1/hubs/{hub}/dispatch/stream"
    rendered = 0
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(timeout=timeout) as client:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                body = (await response.aread()).decode(errors="replace")
                try:
                    body = json.loads(body).get("detail", body)
                except ValueError:
                    pass
                if response.status_code == 404:
                    known = await client.get(f"{base_url.rstrip('/')}/v1/hubs", headers=headers)
                    if known.status_code == 200:
                        ids = ", ".join(h["id"] for h in known.json())
                        body = f"{body} (known hubs: {ids or 'none'})"
                raise RuntimeError(f"{url}: HTTP {response.status_code}: {body}")
            view = live or Live(Text("connecting…"), refresh_per_second=4)
            with view:
                async for event in sse_events(response):
                    if event.event not in ("snapshot", "change"):
                        continue
                    document = json.loads(event.data)
                    snapshot = document if event.event == "snapshot" else document["snapshot"]
                    view.update(render_queue(snapshot))
                    rendered += 1
                    if stop_after is not None and rendered >= stop_after:
                        break
    return rendered


@app.command("queue")
def queue(
    hub: str = typer.Option(..., "--hub", help="Hub id, e.g. ber-westhafen"),
    url: str | None = typer.Option(
        None,
        "--url",
        envvar="MICROHUB_URL",
        help="The public HTTP API (default: a running `microhub demo`'s, else "
        "http://MICROHUB_HTTP_HOST:MICROHUB_HTTP_PORT).",
    ),
    api_key: str = typer.Option(..., "--api-key", envvar="MICROHUB_API_KEY"),
) -> None:
    """Watch the dispatch queue of a hub live (operator:<hub> or admin key)."""
    from services.runtime.cli_common import default_url, load_settings

    base = url or default_url(load_settings())
    try:
        asyncio.run(watch_queue(base, hub, api_key))
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        typer.secho(
            f"cannot reach {base} ({exc or type(exc).__name__}): is `microhub serve api` or "
            "`make demo` running there? Set --url or MICROHUB_URL",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from exc
