"""The demo is the same on any day, and a second one cannot spoil the first.

Two runs with the same seed on two different fake "today"s (every process of the run on
a fake wall clock, time-machine via sitecustomize) give the same totals as the session's
run on the real date: the demo simulates a fixed past month, not "next week". While a
demo runs, a second one on the same data refuses to start and touches nothing, and one
on a taken port says so in one line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

from services.runtime.demo_state import running_demo
from tests.e2e.conftest import DAYS, MICROHUB, SEED, DemoRun, base_env

FAKE_TODAY = Path(__file__).resolve().parents[1] / "support" / "faketoday"


def run_demo_on(today: str, tmp: Path) -> dict:
    env = base_env(tmp) | {
        "FAKE_TODAY_FOR_TESTS": today,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(FAKE_TODAY), os.environ.get("PYTHONPATH")])
        ),
    }
    proc = subprocess.run(
        [MICROHUB, "demo", "--days", str(DAYS), "--seed", str(SEED), "--no-serve"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    reports = tmp / "demo" / "reports"
    # the run really was on the fake day: the reporting process dated its report so
    generated = json.loads((reports / "emissions-berlin-2026-09.json").read_text())["generated_at"]
    assert generated.startswith(today), generated
    return json.loads((reports / "summary.json").read_text())


def demo(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MICROHUB, "demo", "--days", "1"], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def totals(summary: dict) -> dict:
    return {
        "start": summary["start"],
        "bookings": summary["bookings"],
        "routes": summary["routes"],
        "dead_lettered": summary["dead_lettered"],
        "co2e": summary["co2e_saved_kg_by_city"],
        "reports": {k: r["totals"] for k, r in summary["reports"].items()},
    }


def test_same_seed_same_totals_on_any_day(demo_run: DemoRun, tmp_path: Path) -> None:
    assert demo_run.returncode == 0, demo_run.output[-3000:]
    expected = totals(demo_run.summary)
    assert expected["start"] == "2026-09-01"  # the fixed month, whatever the date
    assert set(expected["reports"]) == {"berlin/2026-09", "oslo/2026-09"}
    for today in ("2026-12-24", "2027-07-01"):
        (tmp_path / today).mkdir()
        assert totals(run_demo_on(today, tmp_path / today)) == expected, today


async def test_a_second_demo_refuses_and_leaves_the_first_alone(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    first = await asyncio.create_subprocess_exec(
        MICROHUB, "demo", "--days", "1", "--seed", "3",
        cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert first.stdout is not None
    output = []
    try:
        async with asyncio.timeout(300):
            while b"Ctrl-C to stop" not in b"".join(output):
                line = await first.stdout.readline()
                assert line, b"".join(output).decode()[-3000:]
                output.append(line)
        state = running_demo(tmp_path)
        assert state is not None and state.pid == first.pid and state.url
        data = tmp_path / "demo"
        summary = (data / "reports" / "summary.json").read_bytes()
        files = sorted(p.relative_to(data) for p in data.rglob("*") if p.suffix != ".log")

        second = await asyncio.to_thread(demo, tmp_path, env)
        said = second.stdout + second.stderr
        assert second.returncode == 3, said
        assert "another microhub demo is running" in said and state.url in said
        assert "Traceback" not in said and len(said.strip().splitlines()) <= 4, said
        assert (data / "reports" / "summary.json").read_bytes() == summary
        assert sorted(p.relative_to(data) for p in data.rglob("*") if p.suffix != ".log") == files

        # another data dir, the first demo's port: one line naming the variable to set
        port = state.url.rsplit(":", 1)[1]
        (tmp_path / "other").mkdir()
        other = base_env(tmp_path / "other") | {"MICROHUB_HTTP_PORT": port}
        taken = await asyncio.to_thread(demo, tmp_path / "other", other)
        said = " ".join((taken.stdout + taken.stderr).split())
        assert taken.returncode == 2, said
        assert "MICROHUB_HTTP_PORT" in said and "Traceback" not in said
        assert not (tmp_path / "other" / "demo").exists()
    finally:
        first.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            await first.communicate()
    assert first.returncode == 0
    assert running_demo(tmp_path) is None and not (tmp_path / "demo.lock").exists()
