"""The booking service's handlers through its unit of work, without Kafka: a command goes
in exactly as its consumer applies it (inbox, handler, one transaction), and what comes
out is read from the outbox — the events the relay would publish."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from contracts.booking import BookingCancellationRequested, BookingRequested
from contracts.envelope import new_event
from services.booking import store
from services.booking.service import BookingService
from services.runtime.settings import Settings
from tests.support.carrier import consignment
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)  # Tuesday 09:00 Berlin, on the hourly grid


@pytest.fixture
async def booking(database_url: str, tmp_path: Path) -> AsyncIterator[BookingService]:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never contacted: no broker is started
        data_dir=tmp_path,
        hubs_file=write_catalogue(tmp_path / "hubs.yaml", hub_config(docks_per_slot=1)),
    )
    service = BookingService(settings, settings.bootstrap_list(), database_url=database_url)
    await service.migrate()
    await service.load_hubs(settings.hubs_file)
    yield service
    await service.engine.dispose()


async def outbox(service: BookingService) -> list[dict]:
    async with service.sessions() as session:
        rows = await session.execute(select(store.outbox.c.payload).order_by(store.outbox.c.id))
        return [json.loads(payload) for payload in rows.scalars()]


def request(reference: str, **changes) -> BookingRequested:
    return BookingRequested(
        carrier_id="acme",
        carrier_reference=reference,
        hub_id=TEST_HUB,
        slot_start=changes.pop("slot_start", SLOT),
        consignment=consignment(),
        **changes,
    )


async def send(service: BookingService, payload, at: datetime = NOW) -> None:
    await service.handle(new_event(payload, source="carrier/acme", subject=TEST_HUB, time=at))


async def test_a_request_is_decided_once_and_its_outcome_waits_in_the_outbox(
    booking: BookingService,
) -> None:
    await send(booking, request("r1"))
    await send(booking, request("r1"), at=NOW + timedelta(seconds=5))  # a resend
    await send(booking, request("r2"))  # the slot's only dock is taken

    events = await outbox(booking)
    assert [e["type"].rsplit(".", 2)[-2] for e in events] == ["confirmed", "confirmed", "rejected"]
    assert events[0]["data"] == events[1]["data"]  # the resend gets the original outcome
    assert events[2]["data"]["reason"] == "slot_docks_full"
    assert all(e["subject"] == TEST_HUB and e["source"] == "microhub/booking" for e in events)
    async with booking.sessions() as session:
        assert (await store.usage_of(session, TEST_HUB, SLOT)).docks_used == 1


async def test_a_cancellation_frees_the_dock_for_the_next_request(
    booking: BookingService,
) -> None:
    await send(booking, request("r1"))
    await send(
        booking,
        BookingCancellationRequested(carrier_id="acme", carrier_reference="r1", hub_id=TEST_HUB),
    )
    await send(booking, request("r2"))

    kinds = [e["type"].rsplit(".", 2)[-2] for e in await outbox(booking)]
    assert kinds == ["confirmed", "cancelled", "confirmed"]


async def test_the_same_event_twice_is_applied_once(booking: BookingService) -> None:
    event = new_event(request("r1"), source="carrier/acme", subject=TEST_HUB, time=NOW)
    await booking.handle(event)
    await booking.handle(event)  # a redelivery: the inbox stops it

    assert len(await outbox(booking)) == 1
    assert booking.consumer("booking").stats.duplicates == 1
