"""SIGTERM under load: `microhub serve booking` (a real subprocess) stops consuming,
finishes the record in flight, flushes its outbox, commits and exits 0; after a restart
every request is decided exactly once.

The broker is the session's (Apache Kafka in CI), in another process: the cluster
outlives the service's restart.

The stop overlaps the work by construction: the carrier streams its commands in chunks,
keeping a backlog of a few hundred undecided ones ahead of the outcomes, so SIGTERM lands
while commands are waiting and more are still to come. (A single burst of 2 000 let a fast
service decide all of them before the signal arrived.) A graceful stop commits its offsets first, so this test
proves the shutdown path; crash safety (SIGKILL, the inbox) is proven in
tests/reliability/test_scale_out.py and the multi-process e2e test.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, monday_after
from tests.support.groups import lag
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue
from tests.support.processes import ServeProcess, clean_env
from tests.support.waiting import eventually

TOTAL = 2000
DOCKS = 100  # per slot; 10 slots: half the requests are confirmed
CHUNK = 100  # commands the carrier sends at once
BACKLOG = 300  # the carrier stays at most this far ahead of the outcomes it has seen


async def test_sigterm_under_load_exits_0_and_loses_or_repeats_nothing(
    settings: Settings, topics: list[str], database_url: str, tmp_path: Path
) -> None:
    kafka_process = settings.bootstrap_list()
    prefix = settings.kafka_topic_prefix
    hubs = write_catalogue(
        tmp_path / "hubs.yaml", hub_config(docks_per_slot=DOCKS, volume_per_slot_m3=500)
    )
    env = clean_env(
        kafka_bootstrap_servers=",".join(kafka_process),
        kafka_topic_prefix=prefix,
        max_clock_skew_seconds="0",  # simulated time: next week's slots
        database_urls__booking=database_url,
        hubs_file=str(hubs),
        data_dir=str(tmp_path / "data"),
        health_port="0",  # `serve booking` answers only /healthz and /readyz, on a free port
        sweep_interval_seconds="3600",
    )
    service = ServeProcess("booking", env, tmp_path / "serve.log")
    now = monday_after(datetime.now(UTC)) + timedelta(hours=5)
    slot0 = now + timedelta(days=1, hours=3)
    try:
        await service.start()
        async with (
            Carrier(kafka_process, prefix=prefix) as carrier,
            TopicReader(kafka_process, prefix + "microhub.booking.events.v1") as outcomes,
        ):
            sent = 0

            async def stream() -> None:
                # paced by outcomes, not by the clock: it pauses while the service is down
                nonlocal sent
                for first in range(0, TOTAL, CHUNK):
                    await outcomes.wait_for(
                        lambda r, ahead=first - BACKLOG: len(r.events) >= ahead,
                        timeout=120,
                        what=f"outcomes to come within {BACKLOG} of {first} commands",
                    )
                    await carrier.burst(
                        CHUNK, hub_id=TEST_HUB, first_slot=slot0, time=now, prefix=f"b{first}-"
                    )
                    sent = first + CHUNK

            streaming = asyncio.create_task(stream())
            await outcomes.wait_for(lambda r: len(r.events) >= 50, timeout=60, what="50 outcomes")

            sent_when_signalled = sent
            assert await service.terminate() == 0, service.log.read_text()
            # everything the stopped process published, read to the topic's end
            await eventually(outcomes.at_end, what="the reader at the topic's end")
            stopped_at = len(outcomes.events)
            log = service.log.read_text()
            assert "stopping" in log and "Traceback" not in log, log

            await service.start()
            await streaming
            await outcomes.wait_for(
                lambda r: len(r.by_reference()) >= TOTAL, timeout=120, what=f"{TOTAL} outcomes"
            )
            # anything late would be a duplicate: wait until the group has committed
            # every command (the service publishes what a record caused before that)
            # and the reader has read everything there is
            commands = settings.topic("microhub.booking.commands.v1")

            async def all_committed() -> bool:
                return await lag(kafka_process, settings.group("booking"), commands) == 0

            await eventually(all_committed, what="every command committed")
            await eventually(outcomes.at_end, what="the reader at the topic's end")
            assert await service.terminate() == 0, service.log.read_text()

        # the stop really happened mid-stream: the service had decided some commands, the
        # carrier had more to send when the signal came, and the restarted process decided
        # the rest
        assert 50 <= stopped_at < TOTAL
        assert sent_when_signalled < TOTAL
        # and it stopped consuming at the signal: it decided what had been sent by then
        # (the chunk under way may have been sent before it), not the stream that went on
        # while the process wound down (it used to decide 200-400 more)
        assert stopped_at <= sent_when_signalled + 2 * CHUNK
        by_ref = outcomes.by_reference()
        assert len(by_ref) == TOTAL
        assert {ref: len(ev) for ref, ev in by_ref.items() if len(ev) != 1} == {}
        ids = [e["id"] for e in outcomes.events]
        assert len(ids) == len(set(ids))
        assert len(outcomes.of_type("booking.confirmed.v1")) == 10 * DOCKS
    finally:
        await service.kill()
