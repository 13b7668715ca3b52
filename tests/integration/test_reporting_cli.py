"""`microhub report` (the typer command the lead mounts): writes the file, fails clearly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from services.reporting.cli import app
from services.reporting.service import ReportingService
from services.runtime.settings import Settings
from tests.integration.test_reporting_scenario import EVENTS
from tests.support.reporting import apply


async def test_report_command_writes_each_format_and_refuses_bad_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/reporting.db"
    service = ReportingService(Settings(data_dir=tmp_path), ["127.0.0.1:9"], database_url=url)
    await service.migrate()
    for event in EVENTS:
        await apply(service, event)
    expected = await service.report("berlin", "2026-10")
    await service.engine.dispose()

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["report", "--database-url", url, *args])

    out = tmp_path / "out" / "berlin.json"
    result = await asyncio.to_thread(
        run, "--city", "berlin", "--month", "2026-10", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["totals"] == expected.totals.model_dump()

    pdf = tmp_path / "berlin.pdf"
    result = await asyncio.to_thread(
        run, "--city", "berlin", "--month", "2026-10", "-f", "pdf", "-o", str(pdf)
    )
    assert result.exit_code == 0 and pdf.read_bytes().startswith(b"%PDF")

    bad = await asyncio.to_thread(run, "--city", "berlin", "--month", "10-2026")
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output
    unknown = await asyncio.to_thread(run, "--city", "atlantis", "--month", "2026-10")
    assert unknown.exit_code == 2 and "atlantis" in unknown.output
