"""The transactional outbox: a service writes its state change and the events it causes
in one transaction (:func:`enqueue_all`, :func:`enqueue`); nothing is published before
that transaction commits. The relay that publishes the rows is outbox_relay.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, Update, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from contracts.envelope import CloudEvent, encode
from services.runtime.bulk import insert_many

log = logging.getLogger(__name__)

# (topic, key, payload, headers) -> awaitable that completes when the broker acked it
Publish = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[Any]]
# one record of a relay pass: (topic, key, payload, headers)
OutboxRecord = tuple[str, bytes, bytes, dict[str, str]]
# a pass's records -> per record, in order, None once the broker acked it or the error it
# failed with; completes when every record has its outcome
PublishBatch = Callable[[list[OutboxRecord]], Awaitable[list[BaseException | None]]]
# {topic: oldest pending row's creation time} -> the outbox ids of this service found on
# those topics since then (see outbox_tail.published_outbox_ids)
FindPublished = Callable[[dict[str, datetime]], Awaitable[set[int]]]

OUTBOX_HEADER = "x-microhub-outbox"  # the publishing service
OUTBOX_ID_HEADER = "x-microhub-outbox-id"  # the row's id in that service's outbox


def outbox_row(
    *, event_id: str, event_type: str, payload: bytes, topic: str, key: str, now: datetime
) -> dict[str, Any]:
    """An outbox row for an event already encoded (``payload``: its bytes on the wire)."""
    return {
        "topic": topic,
        "key": key,
        "event_id": event_id,
        "event_type": event_type,
        "payload": payload,
        "created_at": now,
        "attempts": 0,
    }


async def enqueue_all(session: AsyncSession, outbox: Table, rows: list[dict[str, Any]]) -> None:
    """Add events (:func:`outbox_row`) to the outbox inside the caller's transaction, in
    one statement: their ids, and so their publication order, follow the list."""
    await insert_many(session, outbox, rows)


async def enqueue(
    session: AsyncSession, outbox: Table, event: CloudEvent[Any], *, topic: str, key: str
) -> None:
    """Add one event to the outbox inside the caller's transaction."""
    await enqueue_all(
        session,
        outbox,
        [
            outbox_row(
                event_id=event.id,
                event_type=event.type,
                payload=encode(event),
                topic=topic,
                key=key,
                now=datetime.now(UTC),
            )
        ],
    )


def batch_over(publish: Publish) -> PublishBatch:
    """A batch publish sending record by record through ``publish`` (whose awaitable
    returns an awaitable of the broker's ack, as the relay's did before batches)."""

    async def publish_batch(records: list[OutboxRecord]) -> list[BaseException | None]:
        acks = [await publish(*record) for record in records]
        results = await asyncio.gather(*acks, return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    return publish_batch


def settle(
    rows: Sequence[Any], results: Sequence[BaseException | None]
) -> tuple[list[int], list[int], BaseException | None]:
    """A pass's outcome: (the ids of the rows that count as sent, the ids of those left
    pending, the first error), for ``rows`` (with ``id``, ``topic`` and ``key``) in
    publication order and each one's ack or error.

    A row counts as sent only if it and every earlier row of its key were acked: the
    idempotent producer fails the later records of a partition after an earlier one
    failed, and re-sending the whole tail keeps each key's order (duplicates are
    dropped by the consumers' inboxes)."""
    failed_keys: set[tuple[str, str]] = set()
    sent_ids: list[int] = []
    failed_ids: list[int] = []
    first_error: BaseException | None = None
    for row, result in zip(rows, results, strict=True):
        key = (row.topic, row.key)
        if result is not None or key in failed_keys:
            failed_keys.add(key)
            failed_ids.append(row.id)
            if result is not None and first_error is None:
                first_error = result
        else:
            sent_ids.append(row.id)
    return sent_ids, failed_ids, first_error


def mark_sent(outbox: Table, *, sqlite: bool) -> Update:
    """The UPDATE that marks a pass's rows sent (parameters: ``ids``, a list, and
    ``sent_at``). On PostgreSQL one statement text whatever the number of ids, the ids as
    one array: an expanding IN was rendered anew for every length, a parameter and a cast
    per id, and asyncpg prepared each length's text anew, where a consumer's batches, so
    the passes, differ in length (docs/booking-throughput.md). SQLite has no arrays and
    keeps the IN (its text rendered per length costs what ``json_each`` costs there)."""
    ids = outbox.c.id
    chosen: ColumnElement[bool]
    if sqlite:
        chosen = ids.in_(bindparam("ids", expanding=True))
    else:
        chosen = ids == any_(bindparam("ids", type_=ARRAY(ids.type)))
    return update(outbox).where(chosen).values(sent_at=bindparam("sent_at"))


async def pending_count(session: AsyncSession, outbox: Table) -> int:
    return (
        await session.execute(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        )
    ).scalar_one()
