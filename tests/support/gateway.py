"""The gateway in tests: a carrier registry file, and the services a carrier's command
travels through (gateway, booking, optionally dispatch) on the session's Kafka."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_carriers(path: Path, *active: str, inactive: tuple[str, ...] = ()) -> Path:
    carriers = [{"id": c, "name": c.title()} for c in active]
    carriers += [{"id": c, "name": c.title(), "active": False} for c in inactive]
    path.write_text(yaml.safe_dump({"carriers": carriers}), encoding="utf-8")
    return path
