"""The terminal view of a dispatch queue, and the queue command's errors."""

from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from services.dispatch.cli import app, render_queue

SNAPSHOT = {
    "hub_id": "ber-westhafen",
    "hub": {"name": "Berlin Westhafen micro-hub"},
    "clock": "2026-11-23T09:00:00+00:00",
    "last_wave_at": "2026-11-23T08:50:00+00:00",
    "waves": 7,
    "stops": [
        {
            "booking_id": "bk-000001",
            "stop_id": "s1",
            "status": "waiting",
            "parcels": 3,
            "weight_kg": 12.5,
            "attempts": 1,
            "reason": "too_heavy: 300.0 kg",
        },
        {
            "booking_id": "bk-000002",
            "stop_id": "s2",
            "status": "expected",
            "parcels": 2,
            "weight_kg": 4.0,
            "attempts": 0,
            "reason": None,
        },
    ],
    "vehicles": [
        {
            "vehicle_id": "ber-wh-bike-01",
            "type": "e_cargo_bike",
            "status": "available",
            "state": "loading",
            "battery_pct": 88.0,
            "route_id": "ber-westhafen:w00007:ber-wh-bike-01",
            "free": False,
            "why_not_free": "on route ber-westhafen:w00007:ber-wh-bike-01",
        },
        {
            "vehicle_id": "ber-wh-van-01",
            "type": "e_van",
            "status": "charging",
            "state": "charging",
            "battery_pct": None,
            "route_id": None,
            "free": False,
            "why_not_free": "charging",
        },
    ],
    "routes": [
        {
            "route_id": "ber-westhafen:w00007:ber-wh-bike-01",
            "status": "planned",
            "stops": [{}] * 4,
            "load_parcels": 9,
            "load_kg": 31.0,
            "planned_km": 12.34,
            "planned_duration_min": 61.0,
            "solver": "ortools-guided-local-search",
        },
    ],
}


def test_render_queue_shows_stops_vehicles_and_routes() -> None:
    console = Console(record=True, width=160)
    console.print(render_queue(SNAPSHOT))
    text = console.export_text()
    assert "Berlin Westhafen micro-hub" in text and "waves 7" in text
    assert "waiting 1 stops / 3 parcels" in text and "expected 1 stops" in text
    assert "too_heavy: 300.0 kg" in text
    assert "bk-000002" not in text  # expected load is counted, not listed as waiting
    assert "loading" in text and "charging" in text and "88 %" in text
    assert "12.3" in text and "ortools-guided-local-search" in text


def test_the_queue_command_names_what_went_wrong() -> None:
    result = CliRunner().invoke(
        app, ["--hub", "ber-westhafen", "--api-key", "k", "--url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 1
    assert "connect" in result.output.lower()
