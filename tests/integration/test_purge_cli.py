"""`microhub purge`: each service's purge, or a dry run of it, from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.app.cli import app
from services.booking.service import BookingService
from services.runtime.settings import Settings


async def test_purge_dry_run_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MICROHUB_PERSONAL_DATA_RETENTION_DAYS", "7")
    settings = Settings()
    booking = BookingService(settings, ["127.0.0.1:9"], consuming=False)
    await booking.migrate()
    await booking.engine.dispose()
    (tmp_path / "dispatch.db").touch()  # there, but never migrated

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["purge", *args])

    result = await asyncio.to_thread(run, "--service", "booking", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "booking (rows that would change, retention 7 days)" in result.output
    assert "inbox.answer: 0" in result.output

    result = await asyncio.to_thread(run, "-s", "reporting", "-s", "dispatch")
    assert result.exit_code == 2
    assert "reporting: no database at" in result.output
    assert "dispatch: not migrated" in result.output

    result = await asyncio.to_thread(run, "--service", "nobody")
    assert result.exit_code == 2 and "unknown service(s): nobody" in result.output
