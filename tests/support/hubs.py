"""A hub catalogue for tests, independent of the sample data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TEST_HUB = "test-hub"


def hub_config(**overrides: Any) -> dict[str, Any]:
    every_day = {d: ["06:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    config = {
        "id": TEST_HUB,
        "name": "Test hub",
        "city": {
            "id": "testcity",
            "name": "Test City",
            "country": "DE",
            "timezone": "Europe/Berlin",
        },
        "location": {"lat": 52.52, "lon": 13.40},
        "opening_hours": every_day,
        "closed_dates": [],
        "slot_minutes": 60,
        "docks_per_slot": 2,
        "volume_per_slot_m3": 10.0,
        "booking_horizon_days": 14,
        "cancellation_cutoff_minutes": 120,
    }
    config.update(overrides)
    return config


def write_catalogue(path: Path, *hubs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"hubs": list(hubs) or [hub_config()]}), encoding="utf-8")
    return path
