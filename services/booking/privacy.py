"""Booking's part of the personal data purge (docs/privacy.md).

A booking whose slot ended more than the retention ago keeps its decision, its numbers
(volume, slot, status) and the carrier's reference, which the carrier's resends and
queries need; its stops' coordinates (in the request and in the decision event kept for
resends) are rounded to about a kilometre and a carrier's free-text cancellation reason
is dropped. ``purged_at`` marks it done, so each row is rewritten once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.booking import store
from services.runtime.privacy import Counts, scrub

BATCH = 500
b = store.bookings.c

_DUE = (
    select(b.id, b.request, b.outcome, b.cancellation)
    .where(b.purged_at.is_(None), b.slot_end < bindparam("b_before"))
    .order_by(b.slot_end, b.id)
    .limit(BATCH)
)
_ANONYMISE = (
    update(store.bookings)
    .where(b.id == bindparam("b_id"))
    .values(
        request=bindparam("request"),
        outcome=bindparam("outcome"),
        purged_at=bindparam("purged_at"),
    )
    .execution_options(synchronize_session=False)
)
# (a JSON column bound to None would get JSON null, not SQL NULL: only where there is one)
_CANCELLATION = (
    update(store.bookings)
    .where(b.id == bindparam("b_id"))
    .values(cancellation=bindparam("cancellation"))
    .execution_options(synchronize_session=False)
)


async def purge(session: AsyncSession, before: datetime, now: datetime) -> Counts:
    done = 0
    while True:
        rows = (await session.execute(_DUE, {"b_before": before})).all()
        if not rows:
            break
        values: list[dict[str, Any]] = [
            {
                "b_id": r.id,
                "request": scrub(r.request),
                "outcome": scrub(r.outcome),
                "purged_at": now,
            }
            for r in rows
        ]
        await session.execute(_ANONYMISE, values)
        cancelled = [
            {"b_id": r.id, "cancellation": scrub(r.cancellation)}
            for r in rows
            if r.cancellation is not None
        ]
        if cancelled:
            await session.execute(_CANCELLATION, cancelled)
        done += len(values)
    return {"bookings (request, outcome, cancellation)": done}
