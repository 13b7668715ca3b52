"""All brokers go down for a few seconds in the middle of a burst of 1 000 requests.

Fault injection needs the embedded cluster (a real broker cannot be switched off from a
test), so this test always starts its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.booking.service import BookingService
from services.runtime.embedded_kafka import EmbeddedKafka
from services.runtime.kafka import KafkaCluster
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, monday_after
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue

TOTAL = 1000


@pytest.fixture
def faulty_kafka() -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka(brokers=3) as cluster:
        yield cluster


async def test_burst_survives_all_brokers_down(
    faulty_kafka: EmbeddedKafka, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=",".join(faulty_kafka.bootstrap_servers),
        data_dir=tmp_path,
        hubs_file=write_catalogue(
            tmp_path / "hubs.yaml", hub_config(docks_per_slot=50, volume_per_slot_m3=500)
        ),
        sweep_interval_seconds=3600,
        # simulated time (next week's slots) in the envelope, the producer's clock on the
        # record: the skew check would reject every request
        max_clock_skew_seconds=0,
    )
    await KafkaCluster(
        settings, bootstrap=faulty_kafka.bootstrap_servers, embedded=faulty_kafka
    ).create_topics(settings)
    service = BookingService(settings, faulty_kafka.bootstrap_servers, database_url=database_url)
    await service.start()
    now = monday_after(datetime.now(UTC)) + timedelta(hours=5)
    slot0 = now + timedelta(days=1, hours=3)
    try:
        async with (
            Carrier(faulty_kafka.bootstrap_servers) as carrier,
            TopicReader(faulty_kafka.bootstrap_servers, "microhub.booking.events.v1") as outcomes,
        ):
            loop = asyncio.get_running_loop()

            def outage_at_300(i: int) -> None:
                if i == 300:
                    # down for 3 s while the carrier keeps sending (its producer buffers)
                    faulty_kafka.all_brokers_down()
                    loop.call_later(3.0, faulty_kafka.all_brokers_up)

            await carrier.burst(
                TOTAL, hub_id=TEST_HUB, first_slot=slot0, time=now, before_each=outage_at_300
            )
            await outcomes.wait_for(
                lambda r: len(r.by_reference()) >= TOTAL, timeout=120, what=f"{TOTAL} outcomes"
            )
            await asyncio.sleep(2)  # anything late would be a duplicate
            by_ref = outcomes.by_reference()
            assert len(by_ref) == TOTAL
            duplicates = {ref: len(events) for ref, events in by_ref.items() if len(events) != 1}
            assert not duplicates
            ids = [e["id"] for e in outcomes.events]
            assert len(ids) == len(set(ids))
            assert len(outcomes.of_type("booking.confirmed.v1")) == 500  # 10 slots x 50 docks
    finally:
        await service.stop()
