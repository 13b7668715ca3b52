"""`microhub demo --days 3 --no-serve` as a newcomer runs it: exit 0, a summary, and
reports whose totals match what the services' own databases hold."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from tests.e2e.conftest import DAYS, MICROHUB, DemoRun, base_env


def _query(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_demo_exits_cleanly_and_prints_the_summary(demo_run: DemoRun) -> None:
    assert demo_run.returncode == 0, demo_run.output[-3000:]
    for line in ("bookings confirmed", "routes planned", "CO2e saved, berlin", "dead-lettered"):
        assert line in demo_run.output
    assert "reports written to" in demo_run.output
    assert demo_run.summary["days"] == DAYS


def test_reports_are_written_in_every_format(demo_run: DemoRun) -> None:
    reports = demo_run.summary["reports"]
    assert {key.split("/")[0] for key in reports} == {"berlin", "oslo"}
    for entry in reports.values():
        files = [Path(f) for f in entry["files"]]
        assert sorted(f.suffix for f in files) == [".csv", ".html", ".json", ".pdf"]
        pdf = next(f for f in files if f.suffix == ".pdf")
        assert pdf.read_bytes().startswith(b"%PDF")
        assert all(f.stat().st_size > 100 for f in files)


def test_report_totals_match_the_databases(demo_run: DemoRun) -> None:
    totals = [r["totals"] for r in demo_run.summary["reports"].values()]
    routes = _query(
        demo_run.data_dir / "dispatch.db",
        "SELECT count(*), coalesce(sum(actual_km), 0) FROM routes WHERE status = 'completed'",
    )[0]
    assert sum(t["routes"] for t in totals) == routes[0] > 0
    assert abs(sum(t["last_mile_km"] for t in totals) - routes[1]) < 0.01 * max(1, routes[0])
    bookings = dict(
        _query(
            demo_run.data_dir / "booking.db",
            "SELECT status, count(*) FROM bookings GROUP BY status",
        )
    )
    summary = demo_run.summary["bookings"]
    assert summary["confirmed"] == sum(n for s, n in bookings.items() if s != "rejected")
    assert summary["checked_in"] == bookings.get("checked_in", 0)
    assert summary["cancelled"] == bookings.get("cancelled", 0)
    # carriers asked for full slots and off-grid times: the hub turned them away
    assert sum(summary["rejected"].values()) == bookings.get("rejected", 0) > 0
    # every consignment the report counts was checked in at a hub
    assert 0 < sum(t["consignments"] for t in totals) <= bookings["checked_in"]
    # the poison records the carriers' systems sent all ended up in a DLQ
    assert sum(demo_run.summary["dead_lettered"].values()) == 2 * DAYS


def _microhub(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MICROHUB, *args], cwd=cwd, env=base_env(cwd), capture_output=True, text=True, timeout=120
    )


def test_report_finds_the_demos_data_and_creates_no_database(demo_run: DemoRun) -> None:
    """`microhub report` as the README shows it, after `make demo`; its errors name the
    database, the known cities and the months with data."""
    tmp = demo_run.data_dir.parent
    ok = _microhub(tmp, "report", "--city", "berlin", "--month", "2026-09")
    assert ok.returncode == 0, ok.stderr
    assert (
        json.loads(ok.stdout)["totals"] == demo_run.summary["reports"]["berlin/2026-09"]["totals"]
    )
    assert "demo" in ok.stderr  # it says whose database it read

    typo = tmp / "reportng.db"
    wrong = _microhub(tmp, "report", "--city", "berlin", "--month", "2026-09",
                      "--database-url", f"sqlite:///{typo}")  # fmt: skip
    assert wrong.returncode == 2 and str(typo) in " ".join(wrong.stderr.split())
    assert not typo.exists()

    unknown = _microhub(tmp, "report", "--city", "atlantis", "--month", "2026-09")
    assert unknown.returncode == 2 and "known cities: berlin, oslo" in " ".join(
        unknown.stderr.split()
    )
    empty = _microhub(tmp, "report", "--city", "berlin", "--month", "2027-01")
    said = " ".join(empty.stderr.split())
    assert empty.returncode == 2 and "no data for berlin in 2027-01" in said and "2026-09" in said


def test_queue_names_the_url_it_cannot_reach(tmp_path: Path) -> None:
    answer = _microhub(tmp_path, "queue", "--hub", "ber-westhafen", "--api-key", "k",
                       "--url", "http://127.0.0.1:9")  # fmt: skip
    said = " ".join(answer.stderr.split())
    assert answer.returncode == 1 and "cannot reach http://127.0.0.1:9" in said, said
