"""The batch's ledger reads (services/booking/ledger.py) find what the IN lists found, on
both databases: on PostgreSQL the lists go as arrays (``= ANY``, ``unnest``, issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select, tuple_

from services.booking import store
from services.booking.domain import SlotUsage
from services.booking.ledger import Ledger
from services.runtime.bulk import insert_many

START = datetime(2026, 12, 7, 8, tzinfo=UTC)
SLOTS = [(hub, START + timedelta(minutes=30 * i)) for hub in ("hub-a", "hub-'b'") for i in range(4)]


def _booking(booking_id: str, hub: str, slot: datetime, status: str) -> dict[str, Any]:
    return dict(
        id=booking_id, carrier_id="acme", carrier_reference=booking_id, hub_id=hub,
        slot_start=slot, slot_end=slot + timedelta(minutes=30), status=status, volume_l=300,
        request_fingerprint="f" * 64, request={}, reason=None, message=None, outcome=None,
        cancellation=None, check_in=None, rescheduled=None,
        decided_at=START - timedelta(days=1), updated_at=START - timedelta(days=1),
    )  # fmt: skip


async def test_the_ledger_reads_the_named_bookings_and_slots(booking_sessions) -> None:
    stored = {
        "b-1": _booking("b-1", *SLOTS[0], "confirmed"),
        "b-'2'": _booking("b-'2'", *SLOTS[5], "confirmed"),  # its slot is read too
        "b-ü3": _booking("b-ü3", *SLOTS[6], "cancelled"),
        "b-4": _booking("b-4", *SLOTS[1], "confirmed"),  # not named
    }
    async with booking_sessions() as session, session.begin():
        await insert_many(session, store.bookings, list(stored.values()))
        await session.execute(
            insert(store.slot_usage),
            [
                {"hub_id": h, "slot_start": s, "docks_used": i + 1, "volume_used_l": 100 * i}
                for i, (h, s) in enumerate(SLOTS[:6])
            ],
        )
    named = ["b-1", "b-'2'", "b-ü3", "missing", "b-1"]
    # slots as a request names them: another offset than UTC, one not stored yet
    asked = [(h, s.astimezone(timezone(timedelta(hours=2)))) for h, s in (SLOTS[2], SLOTS[7])]
    async with booking_sessions() as session, session.begin():
        ledger = await Ledger.load(session, {}, booking_ids=named, slots=asked, no_shows_before={})
    async with booking_sessions() as session:  # the reference: the same reads as IN lists
        found = await session.execute(
            select(store.bookings.c.id).where(store.bookings.c.id.in_(named))
        )
        touched = [SLOTS[2], SLOTS[7], SLOTS[0], SLOTS[5]]
        usage = await session.execute(
            select(store.slot_usage).where(
                tuple_(store.slot_usage.c.hub_id, store.slot_usage.c.slot_start).in_(touched)
            )
        )
        expected_usage = {
            (r.hub_id, r.slot_start): SlotUsage(r.docks_used, r.volume_used_l) for r in usage
        }
    assert set(ledger.bookings) == {r.id for r in found} == {"b-1", "b-'2'", "b-ü3"}
    assert ledger.bookings["b-'2'"].hub_id == "hub-'b'"
    assert ledger.usage == expected_usage
    assert ledger.usage == {
        SLOTS[0]: SlotUsage(1, 0),
        SLOTS[2]: SlotUsage(3, 200),
        SLOTS[5]: SlotUsage(6, 500),
        SLOTS[7]: SlotUsage(0, 0),  # created by the read
    }
