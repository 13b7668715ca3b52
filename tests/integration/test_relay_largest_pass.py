"""The largest pass the settings allow (``outbox_batch_size``'s upper bound) is read,
acked and marked sent in one pass on both databases: SQLite's mark lists each id as a
parameter of its own, and SQLite refuses a statement of more than 32 766 parameters, so a
larger setting would fail every pass and publish the same rows again and again. The
setting refuses such a value at start-up instead."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.booking import store as booking_store
from services.runtime.db import make_sessionmaker
from services.runtime.outbox import OutboxRecord, enqueue_all, outbox_row
from services.runtime.outbox_relay import OutboxRelay
from services.runtime.settings import Settings

LARGEST = Settings.model_fields["outbox_batch_size"].metadata[-1].le


async def test_the_largest_pass_allowed_is_marked_sent_in_one_pass(
    booking_engine: AsyncEngine,
) -> None:
    outbox = booking_store.outbox
    now = datetime.now(UTC)
    rows = [
        outbox_row(
            event_id=f"e{i}", event_type="x", payload=b"{}", topic="t", key=f"h{i % 7}", now=now
        )
        for i in range(LARGEST + 5)
    ]
    async with make_sessionmaker(booking_engine)() as session, session.begin():
        await enqueue_all(session, outbox, rows)
    published: list[int] = []

    async def acked(records: list[OutboxRecord]) -> list[BaseException | None]:
        published.append(len(records))
        return [None] * len(records)

    relay = OutboxRelay(
        service="test", engine=booking_engine, outbox=outbox, publish_batch=acked,
        batch_size=LARGEST,
    )  # fmt: skip
    assert await relay.relay_once() == LARGEST
    assert await relay.relay_once() == 5
    assert published == [LARGEST, 5]
    async with booking_engine.connect() as conn:
        pending = await conn.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        )
    assert pending == 0


def test_a_pass_larger_than_the_bound_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="outbox_batch_size"):
        Settings(outbox_batch_size=LARGEST + 1)
