"""The queries behind scorecards and the no-show rule (over booking's own ``bookings``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.booking.domain import BookingStatus, HubConfig
from services.booking.scorecards import BookingFacts, month_bounds
from services.booking.store import bookings

b = bookings.c

_MONTH = select(
    b.carrier_id, b.slot_start, b.status, b.check_in, b.cancellation, b.rescheduled, b.late_moves
).where(
    b.hub_id == bindparam("b_hub_id"),
    b.slot_start >= bindparam("b_start"),
    b.slot_start < bindparam("b_end"),
    # requests that never became bookings: rejected, or on a waiting list (waiting_list.py)
    b.status.not_in(
        [
            s.value
            for s in (
                BookingStatus.REJECTED,
                BookingStatus.WAITLISTED,
                BookingStatus.OFFERED,
                BookingStatus.WAITLIST_ENDED,
            )
        ]
    ),
)


def _data(document: Any) -> dict[str, Any]:
    """The ``data`` of a stored ``{"type", "data"}`` payload (JSON null: none)."""
    return document.get("data", {}) if isinstance(document, dict) else {}


def _facts(row: Any) -> BookingFacts:
    checked_in = _data(row.check_in).get("checked_in_at")
    return BookingFacts(
        carrier_id=row.carrier_id,
        slot_start=row.slot_start,
        status=BookingStatus(row.status),
        checked_in_at=datetime.fromisoformat(checked_in) if checked_in else None,
        cancelled_late=bool(_data(row.cancellation).get("late")),
        moves=int(_data(row.rescheduled).get("moves", 0)),
        late_moves=row.late_moves,
    )


async def month_facts(
    session: AsyncSession, hub: HubConfig, month: date, *, carrier_id: str | None = None
) -> list[BookingFacts]:
    """The bookings (not rejected requests) whose slot starts in ``month`` at ``hub``, on
    the hub's calendar; one carrier's only when ``carrier_id`` is given."""
    start, end = month_bounds(hub.zone, month)
    query = _MONTH if carrier_id is None else _MONTH.where(b.carrier_id == carrier_id)
    rows = await session.execute(query, {"b_hub_id": hub.id, "b_start": start, "b_end": end})
    return [_facts(row) for row in rows]


async def settled_counts(
    session: AsyncSession,
    hub_id: str,
    carrier_id: str,
    start: datetime,
    end: datetime,
    *,
    excluding: Iterable[str] = (),
) -> tuple[int, int]:
    """(no-shows, checked in + no-shows) of a carrier's bookings at a hub with a slot
    start in ``[start, end)``, counted by the database (a carrier may have thousands in
    a window); not those ``excluding`` names (the caller counts them as it has them)."""
    settled = (BookingStatus.CHECKED_IN.value, BookingStatus.NO_SHOW.value)
    query = (
        select(b.status, func.count())
        .where(
            b.hub_id == hub_id,
            b.carrier_id == carrier_id,
            b.slot_start >= start,
            b.slot_start < end,
            b.status.in_(settled),
        )
        .group_by(b.status)
    )
    skipped = sorted(excluding)
    if skipped:
        query = query.where(b.id.not_in(skipped))
    counts: dict[str, int] = {status: n for status, n in await session.execute(query)}
    no_shows = counts.get(BookingStatus.NO_SHOW.value, 0)
    return no_shows, no_shows + counts.get(BookingStatus.CHECKED_IN.value, 0)
