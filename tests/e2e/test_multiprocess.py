"""The multi-process deployment on the real engines: the gateway, booking, dispatch and
reporting each in its own `microhub serve` process on PostgreSQL, the HTTP API in another, all on the
session's Kafka (Apache Kafka in CI), driven by `microhub simulate` — and each service
SIGKILLed once mid-run and started again. The report totals are exactly those of the
undisturbed single-process demo with the same seed.

A SIGKILL commits nothing and says goodbye to nobody: the restarted process redoes what
its predecessor had not committed, so this catches a broken inbox (a record applied
twice) and a broken outbox (an event lost or published twice). Each kill lands while the
simulation still runs and booking events are still to come.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from services.app.demo import DEMO_OVERRIDES, DEMO_TUNING
from services.runtime.settings import Settings
from tests.e2e.conftest import DAYS, MICROHUB, SEED, DemoRun, base_env
from tests.support.carrier import TopicReader
from tests.support.kafka import create_topics
from tests.support.processes import ServeProcess

SERVICES = ("gateway", "booking", "dispatch", "reporting")
# where each service is killed, as a share of the run's booking events
KILL_AT = {"booking": 0.2, "gateway": 0.35, "dispatch": 0.5, "reporting": 0.7}


def booking_events_of(summary: dict) -> int:
    """How many booking events a run publishes (from the demo's summary)."""
    b = summary["bookings"]
    return (
        b["confirmed"]
        + sum(b["rejected"].values())
        + sum(b["commands_rejected"].values())
        + b["cancelled"]
        + b["checked_in"]
        + b["no_shows"]
    )


async def test_separate_processes_killed_mid_run_give_the_demo_totals(
    demo_run: DemoRun, real_settings: Settings, postgres_server, tmp_path: Path
) -> None:
    assert demo_run.returncode == 0, demo_run.output[-3000:]
    await create_topics(real_settings)
    prefix = real_settings.kafka_topic_prefix
    bootstrap = real_settings.bootstrap_list()
    env = base_env(tmp_path) | {
        "COLUMNS": "300",
        "MICROHUB_KAFKA_BOOTSTRAP_SERVERS": real_settings.kafka_bootstrap_servers,
        "MICROHUB_KAFKA_TOPIC_PREFIX": prefix,
        "MICROHUB_HEALTH_PORT": "0",
    }
    # the demo's result-relevant settings, and its speed-only ones (short polls)
    for name, value in {**DEMO_OVERRIDES, **DEMO_TUNING}.items():
        env[f"MICROHUB_{name.upper()}"] = str(value)
    databases = {s: await postgres_server.create_database() for s in SERVICES}
    for service, name in databases.items():
        env[f"MICROHUB_DATABASE_URLS__{service.upper()}"] = postgres_server.url_for(name)
    processes = {
        name: ServeProcess(name, env, tmp_path / f"{name}.log") for name in (*SERVICES, "api")
    }
    expected_events = booking_events_of(demo_run.summary)
    killed: dict[str, tuple[int, bool]] = {}
    try:
        for process in processes.values():
            await process.start()
        api_url = processes["api"].url()
        out = tmp_path / "reports"
        simulate = await asyncio.create_subprocess_exec(
            MICROHUB, "simulate",
            "--bootstrap-servers", ",".join(bootstrap),
            "--api-url", api_url,
            "--days", str(DAYS),
            "--seed", str(SEED),
            "--out", str(out),
            env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        simulation_output = asyncio.create_task(simulate.communicate())

        async with TopicReader(
            bootstrap, real_settings.topic("microhub.booking.events.v1")
        ) as seen:
            for name, share in KILL_AT.items():
                threshold = int(share * expected_events)
                await seen.wait_for(
                    lambda r, t=threshold: len(r.events) >= t or simulation_output.done(),
                    timeout=300,
                    what=f"{threshold} booking events before killing {name}",
                )
                await processes[name].kill()
                killed[name] = (len(seen.events), simulation_output.done())
                await processes[name].start()
        stdout, _ = await asyncio.wait_for(simulation_output, timeout=900)
        assert simulate.returncode == 0, stdout.decode()[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        for name in SERVICES:
            assert await processes[name].terminate() == 0, processes[name].log.read_text()[-2000:]
    finally:
        for process in processes.values():
            await process.kill()
        for name in databases.values():
            await postgres_server.drop_database(name)

    # every kill landed mid-run: the simulation was still going, events were still to come
    for name, (events_seen, finished) in killed.items():
        assert not finished and events_seen < expected_events, (name, events_seen, finished)

    assert summary["bookings"] == demo_run.summary["bookings"]
    assert summary["routes"] == demo_run.summary["routes"]
    assert summary["dead_lettered"] == demo_run.summary["dead_lettered"]
    assert set(summary["reports"]) == set(demo_run.summary["reports"])
    for key, report in summary["reports"].items():
        assert report["totals"] == demo_run.summary["reports"][key]["totals"], key
