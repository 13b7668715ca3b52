"""``microhub.booking.requested.v2`` (time windows, pickups) through booking's handlers:
decided like v1, its stop terms published right after the confirmation; v1 unchanged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from contracts.booking import BookingRequested, BookingRequestedV2
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


def request_v2(reference: str, **changes) -> BookingRequestedV2:
    document = consignment()
    document["stops"][0]["kind"] = "pickup"
    slot = changes.get("slot_start", SLOT)  # the window follows the slot it is booked for
    document["stops"][1]["window"] = {
        "start": (slot + timedelta(hours=1)).isoformat(),
        "end": (slot + timedelta(hours=2)).isoformat(),
    }
    return BookingRequestedV2.model_validate(
        {
            "carrier_id": "acme",
            "carrier_reference": reference,
            "hub_id": TEST_HUB,
            "slot_start": SLOT,
            "consignment": document,
            **changes,
        }
    )


async def send(service: BookingService, payload, at: datetime = NOW) -> None:
    await service.handle(new_event(payload, source="carrier/acme", subject=TEST_HUB, time=at))


def kinds(events: list[dict]) -> list[str]:
    return [e["type"].removeprefix("microhub.booking.") for e in events]


async def test_a_v2_request_is_confirmed_and_its_stop_terms_follow(booking: BookingService) -> None:
    await send(booking, request_v2("r1"))
    await send(booking, request_v2("r1"), at=NOW + timedelta(seconds=5))  # a resend
    await send(booking, request_v2("r2"))  # the slot's only dock is taken: no terms
    events = await outbox(booking)
    assert kinds(events) == [
        "confirmed.v1",
        "stop_terms.v1",
        "confirmed.v1",
        "stop_terms.v1",
        "rejected.v1",
    ]
    confirmed, terms = events[0]["data"], events[1]["data"]
    assert terms["booking_id"] == confirmed["booking_id"]
    assert [s["kind"] for s in terms["stops"]] == ["pickup", "delivery"]
    assert terms["stops"][0]["window"] is None
    assert terms["stops"][1]["window"]["start"].startswith("2027-03-02T09:00")
    # booking stored and fingerprinted the v1 request it decided
    async with booking.sessions() as session:
        stored = (await session.execute(select(store.bookings.c.request))).scalars().all()
    assert len(stored) == 2 and all("kind" not in json.dumps(r) for r in stored)


async def test_v1_requests_are_decided_as_before(booking: BookingService) -> None:
    await send(
        booking,
        BookingRequested(
            carrier_id="acme",
            carrier_reference="r1",
            hub_id=TEST_HUB,
            slot_start=SLOT,
            consignment=consignment(),
        ),
    )
    assert kinds(await outbox(booking)) == ["confirmed.v1"]
