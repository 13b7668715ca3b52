"""The multi-process deployment: the embedded Kafka cluster, booking, dispatch and
reporting each in its own process on PostgreSQL, the HTTP API in another (`serve api`),
driven by `microhub simulate`, gives the same report totals as the single-process demo
with the same seed."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.runtime.demo import DEMO_OVERRIDES, DEMO_TUNING
from tests.e2e.conftest import DAYS, MICROHUB, SEED, DemoRun, base_env
from tests.support.processes import Proc

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop()


async def test_separate_processes_give_the_demo_totals(
    demo_run: DemoRun, postgres_server, procs: list[Proc], tmp_path: Path
) -> None:
    assert demo_run.returncode == 0, demo_run.output[-3000:]
    # the consumers' health ports: free ones (fixed defaults could be taken on this host)
    env = base_env(tmp_path) | {"COLUMNS": "300", "MICROHUB_HEALTH_PORT": "0"}
    kafka = Proc([MICROHUB, "kafka", "embedded"], env, tmp_path)
    procs.append(kafka)
    bootstrap = kafka.wait_for(r"^(\S+:\d+(,\S+:\d+)*)$").group(1)
    env["MICROHUB_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    # the demo's result-relevant settings, and its speed-only ones (short polls)
    for name, value in {**DEMO_OVERRIDES, **DEMO_TUNING}.items():
        env[f"MICROHUB_{name.upper()}"] = str(value)
    databases = []
    for service in ("booking", "dispatch", "reporting"):
        name = await postgres_server.create_database()
        databases.append(name)
        env[f"MICROHUB_{service.upper()}_DATABASE_URL"] = postgres_server.url_for(name)
    try:
        for service in ("booking", "dispatch", "reporting"):
            proc = Proc([MICROHUB, "serve", service], env, tmp_path)
            procs.append(proc)
            proc.wait_for(r"health at\s+http://\S+", timeout=90)
        # the reports come through the public API, in a process that consumes nothing
        api = Proc([MICROHUB, "serve", "api"], env, tmp_path)
        procs.append(api)
        api_url = api.wait_for(r"HTTP at\s+(http://\S+)", timeout=90).group(1)
        out = tmp_path / "reports"
        simulate = await asyncio.to_thread(
            subprocess.run,
            [
                MICROHUB, "simulate",
                "--bootstrap-servers", bootstrap,
                "--api-url", api_url,
                "--days", str(DAYS),
                "--seed", str(SEED),
                "--out", str(out),
            ],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert simulate.returncode == 0, simulate.stdout + simulate.stderr
        summary = json.loads((out / "summary.json").read_text())
        for proc in procs[1:]:
            assert proc.stop() == 0, "".join(proc.lines)[-2000:]
    finally:
        for proc in procs:
            proc.stop()
        for name in databases:
            await postgres_server.drop_database(name)

    assert summary["bookings"] == demo_run.summary["bookings"]
    assert summary["routes"] == demo_run.summary["routes"]
    assert summary["dead_lettered"] == demo_run.summary["dead_lettered"]
    assert set(summary["reports"]) == set(demo_run.summary["reports"])
    for key, report in summary["reports"].items():
        assert report["totals"] == demo_run.summary["reports"][key]["totals"], key
