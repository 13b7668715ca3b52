"""The inbox: a consumer records ``(consumer, event id)`` in the same transaction as the
effects of the event, so a redelivered event is recognised and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import cached_statement, insert_ignoring, rowcount


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


async def claim_all(
    session: AsyncSession, inbox: Table, *, consumer: str, deliveries: list[Any]
) -> set[str]:
    """Record a batch of deliveries in one statement; returns the event ids that were new
    for this consumer (a redelivery's, and a second copy within the batch, are not)."""
    now = datetime.now(UTC)
    rows: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        rows.setdefault(
            d.event.id,
            {
                "consumer": consumer,
                "event_id": d.event.id,
                "topic": d.topic,
                "partition": d.partition,
                "offset": d.offset,
                "processed_at": now,
            },
        )
    if not rows:
        return set()
    statement = cached_statement(
        session,
        ("inbox.claim_all", inbox),
        lambda insert: (
            insert(inbox)
            .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
            .returning(inbox.c.event_id)
        ),
    )
    result = await session.execute(statement, list(rows.values()))
    return set(result.scalars())
