"""The waiting list of a full slot (issue 16) through booking's handlers and its database,
on PostgreSQL and SQLite: a request that asks to wait is waitlisted with its position;
capacity freed by a cancellation or a move is offered, held, to the first waiting request
that fits; accepted it is a confirmed booking, declined or expired it goes to the next;
a request still waiting when its slot begins ends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contracts.booking import (
    BookingCancellationRequested,
    BookingRequestedV2,
    BookingRescheduleRequested,
    WaitlistOfferAccept,
    WaitlistOfferDecline,
)
from contracts.envelope import Payload, new_event
from services.booking import scorecard_store, store
from services.booking.domain import HubConfig, booking_id_for
from services.booking.service import BookingService
from services.runtime.settings import Settings
from tests.support.carrier import consignment
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)  # Tuesday 09:00 Berlin, on the hourly grid
MINUTE = timedelta(minutes=1)
WIDE = "wide-hub"


@pytest.fixture
async def booking(database_url: str, tmp_path: Path) -> AsyncIterator[BookingService]:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never contacted: no broker is started
        data_dir=tmp_path,
        hubs_file=write_catalogue(
            tmp_path / "hubs.yaml",
            hub_config(docks_per_slot=1, volume_per_slot_m3=4.0, waitlist_offer_minutes=15),
            hub_config(id=WIDE, docks_per_slot=2, volume_per_slot_m3=4.0),
        ),
    )
    service = BookingService(settings, settings.bootstrap_list(), database_url=database_url)
    await service.migrate()
    await service.load_hubs(settings.hubs_file)
    yield service
    await service.engine.dispose()


class Events:
    """What the booking service published, read from its outbox as it grows."""

    def __init__(self, service: BookingService) -> None:
        self.service = service
        self.seen = 0

    async def new(self) -> list[dict[str, Any]]:
        async with self.service.sessions() as session:
            rows = await session.execute(select(store.outbox.c.payload).order_by(store.outbox.c.id))
            events = [json.loads(p) for p in rows.scalars()]
        fresh, self.seen = events[self.seen :], len(events)
        return fresh


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["type"].removeprefix("microhub.booking."), e["data"]["carrier_reference"])
        for e in events
    ]


def request(
    reference: str, *, wait: bool = True, volume_m3: float = 2.0, slot=SLOT, hub_id=TEST_HUB
) -> BookingRequestedV2:
    return BookingRequestedV2.model_validate(
        {
            "carrier_id": "acme",
            "carrier_reference": reference,
            "hub_id": hub_id,
            "slot_start": slot,
            "consignment": consignment(volume_m3=volume_m3),
            "wait": wait,
        }
    )


def ref(model: type[Payload], reference: str, **more: Any) -> Payload:
    return model(
        **{"carrier_id": "acme", "carrier_reference": reference, "hub_id": TEST_HUB, **more}
    )


async def send(service: BookingService, payload: Any, at: datetime) -> None:
    await service.handle(new_event(payload, source="carrier/acme", subject=payload.hub_id, time=at))


async def docks(service: BookingService, slot: datetime = SLOT) -> int:
    async with service.sessions() as session:
        return (await store.usage_of(session, TEST_HUB, slot)).docks_used


async def status(service: BookingService, reference: str) -> str:
    async with service.sessions() as session:
        found = await store.find_booking(session, "acme", reference)
    assert found is not None
    return found.status.value


async def test_a_freed_dock_is_offered_first_in_line_accepted_and_confirmed(
    booking: BookingService,
) -> None:
    events = Events(booking)
    await send(booking, request("a"), NOW)
    await send(booking, request("b"), NOW + MINUTE)
    await send(booking, request("c"), NOW + 2 * MINUTE)
    await send(booking, request("d", wait=False), NOW + 3 * MINUTE)
    decided = await events.new()
    assert kinds(decided) == [
        ("confirmed.v1", "a"),
        ("stop_terms.v1", "a"),
        ("waitlisted.v1", "b"),
        ("waitlisted.v1", "c"),
        ("rejected.v1", "d"),  # did not ask to wait
    ]
    b, c = decided[2]["data"], decided[3]["data"]
    assert (b["position"], c["position"]) == (1, 2)
    assert b["reason"] == "slot_docks_full" and b["booking_id"] == booking_id_for("acme", "b")

    # a cancels: the dock is held for b (the first in line), not free for anyone
    await send(booking, ref(BookingCancellationRequested, "a"), NOW + 10 * MINUTE)
    [cancelled, offered] = await events.new()
    assert cancelled["type"].endswith("cancelled.v1")
    assert kinds([offered]) == [("waitlist_offered.v1", "b")]
    expires = datetime.fromisoformat(offered["data"]["offer_expires_at"])
    assert expires == NOW + 25 * MINUTE  # the hub's 15 minutes of event time
    assert await docks(booking) == 1 and await status(booking, "b") == "offered"
    await send(booking, request("e", wait=False), NOW + 11 * MINUTE)
    assert [e["data"]["reason"] for e in await events.new()] == ["slot_docks_full"]

    # c may not take what is offered to b; b accepts in time and is confirmed
    await send(booking, ref(WaitlistOfferAccept, "c"), NOW + 12 * MINUTE)
    [refused] = await events.new()
    assert (
        refused["type"].endswith("command_rejected.v2") and refused["data"]["reason"] == "no_offer"
    )
    await send(booking, ref(WaitlistOfferAccept, "b"), NOW + 13 * MINUTE)
    assert kinds(await events.new()) == [("confirmed.v1", "b"), ("stop_terms.v1", "b")]
    assert await status(booking, "b") == "confirmed" and await docks(booking) == 1
    # the very same answer again (a resend under a new id): the confirmation again
    await send(booking, ref(WaitlistOfferAccept, "b"), NOW + 14 * MINUTE)
    assert kinds(await events.new()) == [("confirmed.v1", "b")]
    # and the request resent: its outcome now
    await send(booking, request("b"), NOW + 15 * MINUTE)
    assert kinds(await events.new())[0] == ("confirmed.v1", "b")
    # the hub's scorecard counts bookings, not requests that only waited (c still waits)
    hub = HubConfig.model_validate(hub_config())
    async with booking.sessions() as session:
        facts = await scorecard_store.month_facts(session, hub, SLOT.date().replace(day=1))
    assert sorted(f.status.value for f in facts) == ["cancelled", "confirmed"]


async def test_an_offer_not_answered_in_time_goes_to_the_next_in_line(
    booking: BookingService,
) -> None:
    events = Events(booking)
    for i, reference in enumerate(("a", "b", "c")):
        await send(booking, request(reference), NOW + i * MINUTE)
    await send(booking, ref(BookingCancellationRequested, "a"), NOW + 10 * MINUTE)
    await events.new()
    # the next command of the hub after the expiry (event time) settles it first
    await send(booking, ref(WaitlistOfferAccept, "b"), NOW + 25 * MINUTE)
    assert kinds(await events.new()) == [
        ("waitlist_ended.v1", "b"),
        ("waitlist_offered.v1", "c"),
        ("command_rejected.v2", "b"),
    ]
    assert await status(booking, "b") == "waitlist_ended" and await docks(booking) == 1

    # c declines: the dock is free again, nobody waits any more
    await send(booking, ref(WaitlistOfferDecline, "c"), NOW + 30 * MINUTE)
    [ended] = await events.new()
    assert kinds([ended]) == [("waitlist_ended.v1", "c")] and ended["data"]["reason"] == "declined"
    assert await docks(booking) == 0
    async with booking.sessions() as session:
        assert (await session.execute(select(store.waiting_list))).all() == []


async def test_the_first_waiting_request_that_fits_is_offered_and_the_others_keep_their_place(
    booking: BookingService,
) -> None:
    events = Events(booking)
    # two docks and 4 m³: when x leaves, 3 m³ stay booked; 3.5 m³ do not fit, 0.5 do
    hub = {"hub_id": WIDE}
    await send(booking, request("a", volume_m3=3.0, **hub), NOW)
    await send(booking, request("x", volume_m3=0.5, **hub), NOW)
    await send(booking, request("big", volume_m3=3.5, **hub), NOW + MINUTE)
    await send(booking, request("small", volume_m3=0.5, **hub), NOW + 2 * MINUTE)
    waitlisted = (await events.new())[4:]
    assert [(e["data"]["carrier_reference"], e["data"]["position"]) for e in waitlisted] == [
        ("big", 1),
        ("small", 2),
    ]
    assert waitlisted[0]["data"]["reason"] == "slot_docks_full"
    await send(booking, ref(BookingCancellationRequested, "x", hub_id=WIDE), NOW + 3 * MINUTE)
    _, offered = await events.new()
    assert kinds([offered]) == [("waitlist_offered.v1", "small")]
    # big keeps its place: first in line when a moves away and frees room for it
    await send(
        booking,
        ref(BookingRescheduleRequested, "a", hub_id=WIDE, slot_start=SLOT + timedelta(hours=2)),
        NOW + 4 * MINUTE,
    )
    moved, offered = await events.new()
    assert moved["type"].endswith("rescheduled.v1")
    assert kinds([offered]) == [("waitlist_offered.v1", "big")]


async def test_a_request_still_waiting_when_its_slot_begins_ends(booking: BookingService) -> None:
    events = Events(booking)
    await send(booking, request("a"), NOW)
    await send(booking, request("b"), NOW + MINUTE)
    await events.new()
    # the wall-clock sweep of a quiet hub settles it at its time
    await booking.sweep_no_shows(SLOT)
    [ended] = await events.new()
    assert kinds([ended]) == [("waitlist_ended.v1", "b")]
    assert ended["data"]["reason"] == "slot_passed"
    assert await status(booking, "b") == "waitlist_ended"
