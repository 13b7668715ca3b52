"""The inbox: a consumer records each event it applies, by the event's CloudEvents identity
(``source`` + ``id``: two producers may well use the same ids), in the same transaction
as the event's effects, so a redelivered event is recognised and changes nothing.

A consumer of commands also keeps the command's answer there (the events that answered
it), so that the very same command sent again is answered again, with the same answer.
Its batch writes each command's row once, with the answer (:func:`unrecorded` first,
then :func:`record_new`): a claim first and the answer after had been two writes of
the same row, about a fifth of PostgreSQL's time per decision
(docs/booking-throughput.md). A row another transaction wrote meanwhile (two owners of
a partition during a rebalance) is then found at the end instead of the start:
:class:`InboxRace` undoes the batch, which is redone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from services.runtime import inbox_batch
from services.runtime.db import insert_ignoring, rowcount


class Delivery(Protocol):
    """What the inbox reads of a ``services.runtime.consumer.Delivery``: the event's
    identity and the position of the record it came in."""

    @property
    def event(self) -> CloudEvent[Any]: ...
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


@dataclass(frozen=True)
class Claim:
    """What the inbox said of an event: new (``fresh``, recorded now), or seen before:
    ``redelivered`` (Kafka delivered a record of it again: the same partition, at or
    before the last offset the inbox saw it at) or sent again (a later offset, or another
    partition), with the ``answer`` kept then (consumers of commands)."""

    fresh: bool
    redelivered: bool = False
    answer: list[dict[str, Any]] | None = None


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
    return await seen_before(
        session,
        inbox,
        consumer=consumer,
        source=source,
        event_id=event_id,
        topic=topic,
        partition=partition,
        offset=offset,
    )


async def seen_before(
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
    """How an event this consumer has recorded already was seen (not fresh)."""
    seen = (
        await session.execute(
            select(inbox.c.topic, inbox.c.partition, inbox.c.offset, inbox.c.answer).where(
                inbox.c.consumer == consumer,
                inbox.c.source == source,
                inbox.c.event_id == event_id,
            )
        )
    ).one()
    return Claim(
        fresh=False,
        # offsets only grow: one at or before the last seen is a record read before
        redelivered=(seen.topic, seen.partition) == (topic, partition) and offset <= seen.offset,
        answer=seen.answer,
    )


async def claim_all(
    session: AsyncSession, inbox: Table, *, consumer: str, deliveries: list[Any]
) -> set[tuple[str, str]]:
    """Record a batch of deliveries in one statement; returns the identities (source,
    id) that were new for this consumer. A redelivery's, and a second copy within the
    batch, are not: :func:`seen_before` says how those were seen."""
    return await inbox_batch.claim_new(
        session,
        inbox,
        consumer=consumer,
        rows=[(d.event.source, d.event.id, d.topic, d.partition, d.offset) for d in deliveries],
        now=datetime.now(UTC),
    )


class InboxRace(Exception):
    """Commands decided as new were recorded meanwhile by another transaction (which
    applied and answered them): this one must be undone and redone, and will find them
    recorded. Transient: the redo is not a handler failure."""


async def unrecorded(
    session: AsyncSession, inbox: Table, *, consumer: str, deliveries: list[Any]
) -> set[tuple[str, str]]:
    """The identities (source, id) of the deliveries this consumer has no row of yet.
    Nothing is written: :func:`record_new` writes the rows of those applied, with their
    answers, in the same transaction."""
    identities = [(d.event.source, d.event.id) for d in deliveries]
    found = await inbox_batch.recorded(session, inbox, consumer=consumer, identities=identities)
    return {identity for identity in identities if identity not in found}


async def record_new(
    session: AsyncSession,
    inbox: Table,
    *,
    consumer: str,
    deliveries: Sequence[Delivery],
    answers: dict[tuple[str, str], list[dict[str, Any]]],
) -> None:
    """Record the deliveries :func:`unrecorded` found new and that were applied in this
    transaction (each identity once), each with its answer from ``answers`` if it has
    one. Raises :class:`InboxRace` if any was recorded meanwhile by another transaction;
    an answer with no delivery here is an error (it would not be given again)."""
    rows: dict[tuple[str, str], inbox_batch.RecordRow] = {}
    for d in deliveries:
        identity = (d.event.source, d.event.id)
        if identity not in rows:
            answer = answers.get(identity)
            rows[identity] = (*identity, d.topic, d.partition, d.offset, answer)
    if not answers.keys() <= rows.keys():
        raise RuntimeError(f"{consumer}: answers to commands not applied here")
    written = await inbox_batch.record_new(
        session, inbox, consumer=consumer, rows=list(rows.values()), now=datetime.now(UTC)
    )
    if written != len(rows):
        raise InboxRace(
            f"{consumer}: {len(rows) - written} of {len(rows)} commands were recorded "
            "by another transaction meanwhile"
        )


@cache
def _seen_at(inbox: Table) -> Any:
    """``UPDATE inbox SET topic, partition, offset`` of one event, built once per table."""
    return (
        update(inbox)
        .where(
            inbox.c.consumer == bindparam("b_consumer"),
            inbox.c.source == bindparam("b_source"),
            inbox.c.event_id == bindparam("b_event_id"),
        )
        .values(
            topic=bindparam("b_topic"),
            partition=bindparam("b_partition"),
            offset=bindparam("b_offset"),
        )
    )


async def seen_at(
    session: AsyncSession,
    inbox: Table,
    *,
    consumer: str,
    source: str,
    event_id: str,
    topic: str,
    partition: int,
    offset: int,
) -> None:
    """The event was read again, at a later position (it was sent again): remember that
    one, so that a redelivery of *that* record is known as one too."""
    await session.execute(
        _seen_at(inbox),
        {
            "b_consumer": consumer,
            "b_source": source,
            "b_event_id": event_id,
            "b_topic": topic,
            "b_partition": partition,
            "b_offset": offset,
        },
    )


async def sent_again(
    session: AsyncSession, inbox: Table, *, consumer: str, delivery: Delivery
) -> Claim | None:
    """A delivery this consumer has recorded already (not fresh): was it sent again?
    Then its earlier claim (with the answer kept then), and this record's position is
    remembered, so that the resend's own redelivery (a crash before the offset commit) is
    not taken for another resend. None when it is a redelivery of the record already
    seen: that one was applied, and answered, in the transaction that claimed it."""
    where: dict[str, Any] = {
        "consumer": consumer,
        "source": delivery.event.source,
        "event_id": delivery.event.id,
        "topic": delivery.topic,
        "partition": delivery.partition,
        "offset": delivery.offset,
    }
    earlier = await seen_before(session, inbox, **where)
    if earlier.redelivered:
        return None
    await seen_at(session, inbox, **where)
    return earlier


@cache
def _record_answer(inbox: Table) -> Any:
    """``UPDATE inbox SET answer`` of one event, built once per table."""
    return (
        update(inbox)
        .where(
            inbox.c.consumer == bindparam("b_consumer"),
            inbox.c.source == bindparam("b_source"),
            inbox.c.event_id == bindparam("b_event_id"),
        )
        .values(answer=bindparam("b_answer"))
    )


async def record_answer(
    session: AsyncSession,
    inbox: Table,
    *,
    consumer: str,
    source: str,
    event_id: str,
    answer: list[dict[str, Any]],
) -> None:
    """Keep the events that answered a command with its inbox row."""
    result = await session.execute(
        _record_answer(inbox),
        {"b_consumer": consumer, "b_source": source, "b_event_id": event_id, "b_answer": answer},
    )
    if rowcount(result) != 1:
        raise RuntimeError(f"{consumer}: no inbox row for {source} {event_id} to keep its answer")


async def record_answers(
    session: AsyncSession,
    inbox: Table,
    *,
    consumer: str,
    answers: list[tuple[str, str, list[dict[str, Any]]]],
) -> None:
    """Keep the events that answered each command (source, id, answer) with its inbox
    row: one statement for a batch (:mod:`services.runtime.inbox_batch`). An answer
    whose command has no inbox row is an error: it would not be given again."""
    if not answers:
        return
    kept: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for source, event_id, answer in answers:
        kept[source, event_id] = answer  # the same command twice: the last answer stays
    changed = await inbox_batch.keep_answers(session, inbox, consumer=consumer, answers=kept)
    if changed != len(kept):
        raise RuntimeError(
            f"{consumer}: {len(kept)} answers but {changed} inbox rows to keep them with"
        )
