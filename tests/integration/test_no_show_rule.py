"""The no-show rule through the booking consumer's unit of work (no Kafka), on both
databases: a no-show settled at the very event time of a request counts for that
request, although it is written only with the request's batch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from contracts.booking import CheckInReported
from contracts.envelope import new_event
from contracts.topics import BOOKING_COMMANDS
from services.booking import store
from services.booking.service import BookingService
from services.runtime.consumer import Delivery
from services.runtime.settings import Settings
from tests.integration.test_booking_handlers import request
from tests.integration.test_booking_requests_v2 import request_v2
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
HOUR = timedelta(hours=1)
RULE = {"max_no_show_rate": 0.3, "window_days": 7, "min_bookings": 3, "limited_horizon_days": 1}


@pytest.fixture
async def booking(database_url: str, tmp_path: Path) -> AsyncIterator[BookingService]:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never contacted: no broker is started
        outbox_publish_before_ack_seconds=0,  # the outbox is read here, not published
        data_dir=tmp_path,
        hubs_file=write_catalogue(tmp_path / "hubs.yaml", hub_config(no_show_rule=RULE)),
    )
    service = BookingService(settings, settings.bootstrap_list(), database_url=database_url)
    await service.migrate()
    await service.load_hubs(settings.hubs_file)
    yield service
    await service.engine.dispose()


async def send(service: BookingService, payload, at: datetime) -> dict:
    event = new_event(payload, source="carrier/acme", subject=TEST_HUB, time=at)
    await service.handle(event)
    async with service.sessions() as session:
        rows = await session.execute(select(store.outbox.c.payload).order_by(store.outbox.c.id))
        return json.loads(list(rows.scalars())[-1])


async def send_batch(service: BookingService, payloads: list, at: datetime) -> list[dict]:
    """Commands the consumer fetched together: decided in one batch (one ledger)."""
    topic = service.settings.topic(BOOKING_COMMANDS.name)
    [consumer] = [c for c in service.consumers if c.topic == topic]
    deliveries = [
        Delivery(
            new_event(p, source="carrier/acme", subject=TEST_HUB, time=at),
            topic,
            0,
            i,
            None,
            TEST_HUB,
        )
        for i, p in enumerate(payloads, start=1000)
    ]
    await consumer.apply(deliveries)
    async with service.sessions() as session:
        rows = await session.execute(select(store.outbox.c.payload).order_by(store.outbox.c.id))
        return [json.loads(row) for row in rows.scalars()][-len(payloads) :]


def check_in(reference: str) -> CheckInReported:
    return CheckInReported(carrier_id="acme", carrier_reference=reference, hub_id=TEST_HUB)


async def test_a_no_show_settled_at_the_requests_own_time_limits_that_request(
    booking: BookingService,
) -> None:
    slots = [NOW + (2 + i) * HOUR for i in range(3)]  # 08:00, 09:00, 10:00 Berlin
    for i, slot in enumerate(slots):
        confirmed = await send(booking, request(f"r{i}", slot_start=slot), NOW)
        assert confirmed["type"].endswith("confirmed.v1"), confirmed
    for i in (0, 1):
        checked = await send(booking, check_in(f"r{i}"), slots[i])
        assert checked["type"].endswith("consignment_checked_in.v1"), checked
    # r2's slot ended at 11:00 Berlin; at 11:31 it is a no-show: 1 of 3 = 33 % > 30 %.
    # This batch is the first after that: the no-show is settled in it, not saved yet;
    # r0 (its check-in sent again) is in the batch's memory and stored: counted once
    later = slots[2] + HOUR + timedelta(minutes=31)
    again, far = await send_batch(
        booking, [check_in("r0"), request("far", slot_start=slots[0] + 2 * 24 * HOUR)], later
    )
    assert again["type"].endswith("consignment_checked_in.v1"), again
    assert far["type"] == "microhub.booking.command_rejected.v2", far
    assert far["data"]["reason"] == "horizon_limited_no_shows"
    assert "1 of its last 3" in far["data"]["message"]
    assert far["data"]["command_type"] == "microhub.booking.requested.v1"
    # a v2 request is decided as v1, and refused as the v2 it is
    far_v2 = await send(booking, request_v2("far-v2", slot_start=slots[0] + 48 * HOUR), later)
    assert far_v2["data"]["reason"] == "horizon_limited_no_shows", far_v2
    assert far_v2["data"]["command_type"] == "microhub.booking.requested.v2"
    async with booking.sessions() as session:
        assert await store.find_booking(session, "acme", "far") is None  # nothing stored
        missed = await store.find_booking(session, "acme", "r2")
    assert missed is not None and missed.status.value == "no_show"
    # a day ahead is still open to it
    near = await send(booking, request("near", slot_start=slots[0] + 24 * HOUR), later)
    assert near["type"].endswith("confirmed.v1"), near
