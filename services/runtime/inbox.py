"""The inbox: a consumer records ``(consumer, event id)`` in the same transaction as the
effects of the event, so a redelivered event is recognised and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import insert_ignoring, rowcount


async def claim(
    session: AsyncSession,
    inbox: Table,
    *,
    consumer: str,
    event_id: str,
    topic: str,
    partition: int,
    offset: int,
) -> bool:
    """True when this event is new for this consumer (and is now recorded)."""
    result = await session.execute(
        insert_ignoring(session, inbox, "consumer", "event_id"),
        {
            "consumer": consumer,
            "event_id": event_id,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "processed_at": datetime.now(UTC),
        },
    )
    return rowcount(result) == 1
