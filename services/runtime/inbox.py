"""The inbox: a consumer records each event it applies, by the event's CloudEvents identity
(``source`` + ``id``: two producers may well use the same ids), in the same transaction
as the event's effects, so a redelivered event is recognised and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import insert_ignoring, rowcount


@dataclass(frozen=True)
class Claim:
    """What the inbox said of an event: new (``fresh``, recorded now), or seen before:
    at the same position (``redelivered``: Kafka delivered the same record again) or at
    another one (sent again)."""

    fresh: bool
    redelivered: bool = False


async def claim(
    session: AsyncSession,
    inbox: Table,
    *,
    consumer: str,
    source: str,
    event_id: str,
    topic: str,
    partition: int,
    offset: int,
) -> Claim:
    """Record the event for this consumer if it is new; else say how it was seen."""
    result = await session.execute(
        insert_ignoring(session, inbox, "consumer", "source", "event_id"),
        {
            "consumer": consumer,
            "source": source,
            "event_id": event_id,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "processed_at": datetime.now(UTC),
        },
    )
    if rowcount(result) == 1:
        return Claim(fresh=True)
    seen = (
        await session.execute(
            select(inbox.c.topic, inbox.c.partition, inbox.c.offset).where(
                inbox.c.consumer == consumer,
                inbox.c.source == source,
                inbox.c.event_id == event_id,
            )
        )
    ).one()
    return Claim(
        fresh=False,
        redelivered=(seen.topic, seen.partition, seen.offset) == (topic, partition, offset),
    )
