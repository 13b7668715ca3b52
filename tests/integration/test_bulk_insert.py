"""Bulk INSERTs through the driver's executemany (services/runtime/bulk.py) store what
SQLAlchemy's own INSERT stores, on both databases, and keep the rows' order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from services.booking import store
from services.runtime.bulk import insert_many

SLOT = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC)


def _booking(booking_id: str, **changes: Any) -> dict[str, Any]:
    row = dict(
        id=booking_id,
        carrier_id="acme",
        carrier_reference=booking_id,
        hub_id="ber-westhafen",
        # another offset than UTC: stored as the same instant
        slot_start=SLOT.astimezone(timezone(timedelta(hours=1))),
        slot_end=SLOT + timedelta(hours=1),
        status="confirmed",
        volume_l=300,
        request_fingerprint="f" * 64,
        request={"consignment": {"parcel_count": 5, "volume_m3": 0.3}, "note": 'Grüße "x"'},
        reason=None,
        message=None,
        outcome={"type": "microhub.booking.confirmed.v1", "data": {"n": 1.5, "big": 10**15}},
        cancellation=None,
        check_in=None,
        rescheduled=None,
        decided_at=SLOT - timedelta(days=2),
        updated_at=SLOT - timedelta(days=2),
    )
    return row | changes


async def test_a_bulk_insert_stores_what_sqlalchemy_stores(booking_sessions) -> None:
    async with booking_sessions() as session, session.begin():
        await session.execute(insert(store.bookings), [_booking("by-sqlalchemy")])
        await insert_many(session, store.bookings, [_booking("by-driver")])
    async with booking_sessions() as session:
        rows = {
            r.id: r._asdict()
            for r in await session.execute(select(store.bookings).order_by(store.bookings.c.id))
        }
        # SQL NULL or JSON null, as SQLAlchemy wrote it; and the text SQLite compares
        raw = (
            await session.execute(
                text(
                    "SELECT id, cancellation IS NULL, reason IS NULL, purged_at IS NULL,"
                    " CAST(slot_start AS TEXT) FROM bookings ORDER BY id"
                )
            )
        ).all()
    driver, reference = rows.pop("by-driver"), rows.pop("by-sqlalchemy")
    for row in (driver, reference):
        row.pop("id"), row.pop("carrier_reference")
    assert driver == reference
    assert driver["slot_start"] == SLOT and driver["late_moves"] == 0  # the server default
    assert raw[0][1:] == raw[1][1:]


async def test_rows_keep_their_order_across_runs_of_other_columns(booking_sessions) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        {"topic": "t", "key": "h", "event_id": f"e{i}", "event_type": "x",
         "payload": f"{i}".encode(), "created_at": now}
        | ({"attempts": 0} if i % 3 else {})  # some leave the default out
        for i in range(10)
    ]  # fmt: skip
    async with booking_sessions() as session, session.begin():
        await insert_many(session, store.outbox, rows)
    async with booking_sessions() as session:
        stored = (
            await session.execute(
                select(store.outbox.c.event_id, store.outbox.c.attempts).order_by(store.outbox.c.id)
            )
        ).all()
    assert [(e, a) for e, a in stored] == [(f"e{i}", 0) for i in range(10)]


async def test_a_row_without_a_required_column_is_refused_by_name(booking_sessions) -> None:
    row = _booking("no-hub")
    del row["hub_id"]
    async with booking_sessions() as session, session.begin():
        with pytest.raises(ValueError, match=r"bookings\.hub_id"):
            await insert_many(session, store.bookings, [row])


async def test_a_large_batch_keeps_its_order_in_the_ids(booking_sessions) -> None:
    """Ids follow the list across a batch as large as a loaded consumer's: the outbox
    publishes by id, so a row numbered out of order would be published out of order."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    # event ids whose text order is not the list's: an insert ordered by anything but
    # the list would show here
    names = [f"e{(i * 7919) % 3000:04d}" for i in range(3000)]
    rows = [
        {"topic": "t", "key": f"h{i % 5}", "event_id": name, "event_type": "x",
         "payload": name.encode(), "created_at": now}
        for i, name in enumerate(names)
    ]  # fmt: skip
    async with booking_sessions() as session, session.begin():
        await insert_many(session, store.outbox, rows)
    async with booking_sessions() as session:
        stored = (
            await session.execute(select(store.outbox.c.event_id).order_by(store.outbox.c.id))
        ).scalars()
        assert list(stored) == names


async def test_rows_whose_key_is_taken_are_skipped_the_others_stored(booking_sessions) -> None:
    slot = datetime(2026, 12, 7, 9, tzinfo=UTC)

    def usage(hub: str, docks: int) -> dict[str, Any]:
        return {"hub_id": hub, "slot_start": slot, "docks_used": docks, "volume_used_l": 0}

    async with booking_sessions() as session, session.begin():
        await insert_many(session, store.slot_usage, [usage("a", 3)])
    async with booking_sessions() as session, session.begin():
        await insert_many(
            session,
            store.slot_usage,
            [usage("a", 0), usage("b", 0)],
            skip_existing=("hub_id", "slot_start"),
        )
    async with booking_sessions() as session:
        stored = (
            await session.execute(
                select(store.slot_usage.c.hub_id, store.slot_usage.c.docks_used).order_by(
                    store.slot_usage.c.hub_id
                )
            )
        ).all()
    assert [tuple(r) for r in stored] == [("a", 3), ("b", 0)]  # "a" kept what it had


async def test_a_value_longer_than_its_column_is_never_cut(booking_sessions) -> None:
    """The arrays are cast without a length: PostgreSQL's assignment to VARCHAR(64) then
    refuses a longer value, as SQLAlchemy's own INSERT does; SQLite, which does not check
    lengths, stores it whole. Never a shortened carrier id."""
    row = _booking("long", carrier_id="c" * 65)
    async with booking_sessions() as session:
        if session.bind.dialect.name == "postgresql":
            with pytest.raises(Exception, match="too long"):
                async with session.begin():
                    await insert_many(session, store.bookings, [row])
            return
        async with session.begin():
            await insert_many(session, store.bookings, [row])
        stored = await session.scalar(select(store.bookings.c.carrier_id))
        assert stored == "c" * 65


async def test_rows_whose_key_is_taken_replace_the_stored_values(booking_sessions) -> None:
    slot = datetime(2026, 12, 7, 9, tzinfo=UTC)
    other = slot + timedelta(hours=1)

    def usage(hub: str, start: datetime, docks: int, volume: int) -> dict[str, Any]:
        return {"hub_id": hub, "slot_start": start, "docks_used": docks, "volume_used_l": volume}

    async with booking_sessions() as session, session.begin():
        await insert_many(
            session, store.slot_usage, [usage("a", slot, 1, 100), usage("a", other, 2, 200)]
        )
    async with booking_sessions() as session, session.begin():
        await insert_many(
            session,
            store.slot_usage,
            [usage("a", slot, 4, 450), usage("b", slot, 1, 50)],
            replace_existing=("hub_id", "slot_start"),
        )
    async with booking_sessions() as session:
        u = store.slot_usage.c
        stored = (
            await session.execute(
                select(u.hub_id, u.slot_start, u.docks_used, u.volume_used_l).order_by(
                    u.hub_id, u.slot_start
                )
            )
        ).all()
    assert [tuple(r) for r in stored] == [
        ("a", slot, 4, 450),  # replaced
        ("a", other, 2, 200),  # not in the rows: as it was
        ("b", slot, 1, 50),  # new
    ]
