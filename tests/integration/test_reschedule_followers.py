"""Dispatch and reporting follow a booking that moved to another slot (issue 16), on both
databases, through their consumers' apply paths: the stops still expected and the
consignment take the new slot; an earlier move published again (a carrier resent its
command, booking answered it again) moves nothing back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from contracts.booking import BookingConfirmed, BookingRescheduled
from services.dispatch import store as dispatch_store
from services.dispatch.service import DispatchService
from services.reporting import store as reporting_store
from services.reporting.service import ReportingService
from services.runtime.settings import Settings
from tests.integration.test_dispatch_waves import apply as dispatch_apply
from tests.integration.test_dispatch_waves import dispatch as dispatch
from tests.support import reporting as events
from tests.support.dispatch import confirmed, consignment

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SLOT = T0 + timedelta(hours=1)


def moved(booking: BookingConfirmed, start: datetime, end: datetime, moves: int):
    def event(previous: datetime) -> BookingRescheduled:
        return BookingRescheduled(
            booking_id=booking.booking_id,
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            previous_slot_start=previous,
            previous_slot_end=previous + timedelta(hours=1),
            slot_start=start,
            slot_end=end,
            late=False,
            moves=moves,
        )

    return event


async def test_dispatch_expects_the_stops_at_the_new_slot(
    dispatch: DispatchService,
) -> None:
    booking = confirmed("b1", SLOT, consignment(stops=2))
    await dispatch_apply(dispatch, booking, T0)
    first = moved(booking, SLOT + timedelta(days=1), SLOT + timedelta(days=1, hours=1), 1)(SLOT)
    second = moved(booking, SLOT + timedelta(days=2), SLOT + timedelta(days=2, hours=1), 2)(
        first.slot_start
    )
    for event in (first, second, first):  # the first move published again, after the second
        await dispatch_apply(dispatch, event, T0 + timedelta(minutes=1))
    async with dispatch.sessions() as session:
        stops = await dispatch_store.stops_of_booking(session, "b1")
    assert len(stops) == 2
    assert {s.expected_at for s in stops} == {SLOT + timedelta(days=2)}
    assert {s.booking_moves for s in stops} == {2}
    assert all("expected with the slot at" in (s.reason or "") for s in stops)


@pytest.fixture
async def reporting(tmp_path: Path, database_url: str) -> AsyncIterator[ReportingService]:
    service = ReportingService(
        Settings(data_dir=tmp_path), ["127.0.0.1:9"], database_url=database_url
    )
    await service.migrate()
    try:
        yield service
    finally:
        await service.engine.dispose()


async def test_reporting_moves_the_consignment_to_its_new_day(
    reporting: ReportingService,
) -> None:
    """Berlin: 2026-10-14 06:00 UTC is that day's 08:00; a move to the next day takes the
    consignment to that carrier-day, and both days' tours are computed again."""
    depot, stop = (52.40, 13.10), ("s1", (52.52, 13.40), 3)
    slot = datetime(2026, 10, 14, 6, tzinfo=UTC)
    mine = events.confirmed(
        "m", carrier="acme", depot=depot, stops=[stop], weight_kg=10, volume_m3=1
    )
    other = events.confirmed(
        "o", carrier="acme", depot=depot, stops=[stop], weight_kg=10, volume_m3=1
    )
    for booking in (mine, other):
        await events.apply(reporting, events.envelope(booking, time=slot - timedelta(days=1)))
    c = reporting_store.consignments.c
    async with reporting.sessions() as session, session.begin():  # as if a report computed them
        await session.execute(update(reporting_store.consignments).values(derived_params="x"))
    first = moved(mine, slot + timedelta(days=1), slot + timedelta(days=1, minutes=30), 1)(slot)
    second = moved(mine, slot + timedelta(days=2), slot + timedelta(days=2, minutes=30), 2)(
        first.slot_start
    )
    at = slot - timedelta(hours=1)
    for event in (first, second, first):
        await events.apply(reporting, events.envelope(event, time=at))
    async with reporting.sessions() as session:
        rows = {
            r.booking_id: r
            for r in await session.execute(
                select(c.booking_id, c.baseline_day, c.slot_start_ms, c.moves, c.derived_params)
            )
        }
    assert rows["m"].baseline_day == "2026-10-16" and rows["m"].moves == 2
    assert rows["m"].slot_start_ms == round((slot + timedelta(days=2)).timestamp() * 1000)
    assert rows["m"].derived_params is None
    # the carrier-day it left: computed again without it
    assert rows["o"].baseline_day == "2026-10-14" and rows["o"].derived_params is None
