"""The whole Kafka cluster dies (SIGKILL) while the booking service is deciding a burst of
1 000 requests and relaying its outbox, and comes back a few seconds later: every request
gets exactly one outcome, no event is published twice, capacity holds.

The test proves the outage overlapped the work: when the broker dies, the service is
deciding and relaying (some requests decided and some outcomes published, not all), and
half of the requests are still to be sent (the carrier's producer buffers them). It runs
its own one-node Apache Kafka, so that killing it harms no other test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.booking.service import BookingService
from services.runtime.apache_kafka import ApacheKafka
from services.runtime.kafka import KafkaCluster
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, monday_after
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue
from tests.support.kafka import real_kafka_or_skip
from tests.support.waiting import eventually

TOTAL = 1000
DOWN_SECONDS = 3.0


@pytest.fixture
def doomed_kafka(tmp_path: Path) -> Iterator[ApacheKafka]:
    real_kafka_or_skip()
    with ApacheKafka(nodes=1, directory=tmp_path / "kafka") as cluster:
        yield cluster


async def test_burst_survives_the_whole_cluster_dying(
    doomed_kafka: ApacheKafka, database_url: str, tmp_path: Path
) -> None:
    bootstrap = doomed_kafka.bootstrap_servers
    settings = Settings(
        kafka_bootstrap_servers=",".join(bootstrap),
        data_dir=tmp_path,
        hubs_file=write_catalogue(
            tmp_path / "hubs.yaml", hub_config(docks_per_slot=50, volume_per_slot_m3=500)
        ),
        sweep_interval_seconds=3600,
        max_clock_skew_seconds=0,  # simulated time: next week's slots
        kafka_consumer_max_batch=20,  # many small transactions: the outage lands among them
        outbox_publish_before_ack_seconds=1.0,
    )
    await KafkaCluster(settings, bootstrap=bootstrap).create_topics(settings)
    service = BookingService(settings, bootstrap, database_url=database_url)
    await service.start()
    now = monday_after(datetime.now(UTC)) + timedelta(hours=5)
    slot0 = now + timedelta(days=1, hours=3)
    try:
        async with (
            Carrier(bootstrap) as carrier,
            TopicReader(bootstrap, "microhub.booking.events.v1") as outcomes,
        ):
            relay, consumer = service.relay, service.consumers[0]
            assert relay is not None
            await carrier.burst(TOTAL // 2, hub_id=TEST_HUB, first_slot=slot0, time=now)
            await eventually(
                lambda: relay.published >= 50, interval=0.005, what="the first outcomes"
            )

            doomed_kafka.kill(1)
            decided_when_killed = consumer.stats.processed
            published_when_killed = relay.published
            loop = asyncio.get_running_loop()
            loop.call_later(DOWN_SECONDS, doomed_kafka.start_node, 1)
            # the second half while the broker is dead: the producer buffers and retries
            await carrier.burst(
                TOTAL // 2, hub_id=TEST_HUB, first_slot=slot0, time=now, prefix="late"
            )

            await outcomes.wait_for(
                lambda r: len(r.by_reference()) >= TOTAL, timeout=180, what=f"{TOTAL} outcomes"
            )
            # nothing late: the consumer group has committed everything it decided
            await eventually(
                lambda: service.consumers[0].stats.processed >= TOTAL,
                what="the service to have decided every request",
            )
            await service.relay.flush()  # type: ignore[union-attr]
        async with TopicReader(bootstrap, "microhub.booking.events.v1") as everything:
            await everything.wait_for(lambda r: len(r.events) >= TOTAL, what="the whole topic")
            await eventually(everything.at_end, what="the reader at the topic's end")
            by_ref = everything.by_reference()
            ids = [e["id"] for e in everything.events]

        # the outage overlapped the work: the service was deciding and relaying, some
        # done and some not, when the cluster died
        assert 0 < decided_when_killed < TOTAL
        assert 50 <= published_when_killed < TOTAL
        # and nothing was lost or repeated
        assert len(by_ref) == TOTAL
        assert {ref: len(ev) for ref, ev in by_ref.items() if len(ev) != 1} == {}
        assert len(ids) == len(set(ids))
        confirmed = [e for e in everything.events if e["type"].endswith("confirmed.v1")]
        assert len(confirmed) == 500  # 10 slots x 50 docks
    finally:
        await service.stop()
