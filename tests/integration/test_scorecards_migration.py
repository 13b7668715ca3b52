"""Migration 20261203_0007 on both databases: bookings moved before it keep their last
move's ``late`` flag as their count of late moves (the scorecards' late reschedules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import JSON, Integer, String, column, select, table

from services.booking import store
from services.booking.service import BookingService
from services.runtime.db import UTCDateTime, make_engine
from services.runtime.migrations import upgrade

SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)
BEFORE = table(  # the bookings table as revision 20261202_0006 has it
    "bookings",
    *(column(name, String()) for name in ("id", "carrier_id", "carrier_reference", "hub_id")),
    *(column(name, String()) for name in ("status", "request_fingerprint")),
    column("volume_l", Integer()),
    *(column(name, JSON()) for name in ("request", "outcome", "rescheduled")),
    *(column(name, UTCDateTime()) for name in ("slot_start", "slot_end", "decided_at")),
    column("updated_at", UTCDateTime()),
)


def row(reference: str, rescheduled: dict | None) -> dict:
    return {
        "id": f"id-{reference}",
        "carrier_id": "acme",
        "carrier_reference": reference,
        "hub_id": "test-hub",
        "status": "confirmed",
        "request_fingerprint": "f",
        "volume_l": 1000,
        "request": {},
        "outcome": {},
        "rescheduled": rescheduled,
        "slot_start": SLOT,
        "slot_end": SLOT + timedelta(hours=1),
        "decided_at": SLOT - timedelta(days=1),
        "updated_at": SLOT - timedelta(days=1),
    }


async def test_the_last_moves_late_flag_is_taken_over(database_url: str) -> None:
    engine = make_engine(database_url)
    location = BookingService.spec.migrations
    try:
        await upgrade(engine, "booking", location, "20261202_0006")
        moved = {"type": "microhub.booking.rescheduled.v1", "data": {"moves": 2}}
        async with engine.begin() as connection:
            await connection.execute(
                BEFORE.insert(),
                [
                    row("late", {**moved, "data": {"moves": 2, "late": True}}),
                    row("in-time", {**moved, "data": {"moves": 1, "late": False}}),
                    row("never-moved", None),
                ],
            )
        await upgrade(engine, "booking", location)
        async with engine.connect() as connection:
            counted = dict(
                (
                    await connection.execute(
                        select(store.bookings.c.carrier_reference, store.bookings.c.late_moves)
                    )
                ).all()
            )
        assert counted == {"late": 1, "in-time": 0, "never-moved": 0}
    finally:
        await engine.dispose()
