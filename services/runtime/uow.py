"""The unit of work: one transaction of a service, and everything it causes.

Whatever changes a service's state — a consumer applying a record, a timer, an admin
route, a replay — does it through a unit of work: the state change, the events it causes
(written to the service's outbox, :meth:`UnitOfWork.emit`) and what must happen only
once they are durable (:meth:`UnitOfWork.on_commit`) commit together or not at all.
Nothing is published before the transaction commits; the relay publishes the outbox.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts.envelope import CloudEvent, Payload, encode_new, new_event_id
from services.runtime import metrics, tracing
from services.runtime.db import writing
from services.runtime.outbox import enqueue_all, outbox_row

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Emitted:
    """An event written to the outbox: its CloudEvents id and type, and its bytes as the
    relay will publish them."""

    id: str
    type: str
    encoded: bytes


class OutboxFloor(Protocol):
    """The relay's floor (outbox_relay.py): noted before a unit of work writes outbox
    rows, lowered to that mark once they are committed, so that a pass that ran in
    between and moved past their ids reads them after all."""

    def floor_mark(self) -> int: ...

    def lower_floor(self, mark: int) -> None: ...


class UnitOfWork:
    """One open transaction of a service: ``session`` for its tables, :meth:`emit` for the
    events it causes, :meth:`on_commit` for what follows a commit."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        source: str,
        outbox: Table | None,
        topic: Callable[[str], str],
        floor: OutboxFloor | None = None,
    ) -> None:
        self.session = session
        self._floor = floor
        self.floor_mark: int | None = None  # the relay's floor before the first outbox row
        self.source = source
        self._outbox = outbox
        self._topic = topic
        self._after_commit: list[Callable[[], None]] = []
        self._events: list[dict[str, Any]] = []  # outbox rows, written in one statement
        self._now = datetime.now(UTC)
        self.emitted = 0
        # (the command being answered, the types that answer it, the answer so far)
        self._answering: tuple[CloudEvent[Any], frozenset[str], list[dict[str, Any]]] | None
        self._answering = None
        # the event types that answer a command, for this unit's consumer (none: it
        # consumes no commands), and each command answered so far with its answer, for
        # services/runtime/answers.py to keep together with the inbox rows
        self.answer_types: frozenset[str] = frozenset()
        self.answered: list[tuple[CloudEvent[Any], list[dict[str, Any]]]] = []
        self.payloads: list[Payload] = []  # what it emitted (metrics count them on commit)

    def emit(
        self,
        payload: Payload,
        *,
        key: str,
        time: datetime,
        event_id: str | None = None,
        topic: str | None = None,
        data: dict[str, Any] | None = None,
        source: str | None = None,
        causation: tuple[str, str] | None = None,
    ) -> Emitted:
        """Write ``payload`` as an event to the outbox, on the topic its contract names
        (or ``topic``: a carrier's own, without the environment's prefix), keyed by
        ``key`` (the hub id for hub events), at event time ``time``. Inside
        :meth:`answering`, an event of an answer type answers that command. ``data``: the
        payload's ``model_dump(mode="json")`` when the caller made it already (a decision
        stores it too), so that it is made once.

        ``source`` and ``causation`` (a command's id and source) are for the gateway,
        which forwards a carrier's command under a source scoped to the carrier, and
        tells the carrier about it under the carrier's own id and source."""
        if self._outbox is None:
            raise RuntimeError(f"{self.source} publishes nothing: it has no outbox")
        # the trace of what caused it goes on (traceparent)
        extensions = tracing.extension()
        if causation is not None:
            extensions = extensions | {"causationid": causation[0], "causationsource": causation[1]}
        if self._answering is not None and payload.event_type in self._answering[1]:
            command, _types, answer = self._answering
            extensions = extensions | {"causationid": command.id, "causationsource": command.source}
            if data is None:  # the caller's JSON form of the payload, when it has one
                data = payload.model_dump(mode="json")
            answer.append({"type": payload.event_type, "data": data, "key": key})
        # the bytes straight from the payload's JSON form: no envelope model is built
        # (encode_new says what that saves)
        event_id = event_id or new_event_id()
        encoded = encode_new(
            payload,
            event_id=event_id,
            source=source or self.source,
            subject=key,
            time=time,
            data=data,
            extensions=extensions,
        )
        self.payloads.append(payload)
        self._events.append(
            outbox_row(
                event_id=event_id,
                event_type=payload.event_type,
                payload=encoded,
                topic=self._topic(topic or payload.topic),
                key=key,
                now=self._now,
            )
        )
        self.emitted += 1
        return Emitted(event_id, payload.event_type, encoded)

    async def flush(self) -> None:
        """Write the events emitted so far to the outbox (done before every commit: a
        batch's events cost one statement, not one each)."""
        if self._events and self._outbox is not None:
            if self._floor is not None and self.floor_mark is None:
                self.floor_mark = self._floor.floor_mark()
            events, self._events = self._events, []
            await enqueue_all(self.session, self._outbox, events)

    @contextlib.contextmanager
    def answering(
        self, command: CloudEvent[Any], *, keep: bool = True
    ) -> Iterator[list[dict[str, Any]]]:
        """While open, an event of one of :attr:`answer_types` this unit of work emits
        answers ``command``: it carries the command's id and source (``causationid``,
        ``causationsource``), and its ``{"type", "data", "key"}`` is added to the list
        yielded; on leaving, a non-empty answer is added to :attr:`answered` (unless
        ``keep`` is false: an answer sent again is kept already)."""
        answer: list[dict[str, Any]] = []
        outer, self._answering = self._answering, (command, self.answer_types, answer)
        try:
            yield answer
        finally:
            self._answering = outer
        if answer and keep:
            self.answered.append((command, answer))

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never after a rollback)."""
        self._after_commit.append(callback)

    def _committed(self) -> None:
        for callback in self._after_commit:
            try:
                callback()
            except Exception:  # the commit stands: a follow-up must not undo it
                log.exception("%s: an after-commit step failed", self.source)


class UnitsOfWork:
    """Opens units of work on one service's database (what ``Service.unit_of_work`` and
    the consumers use)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        source: str,
        outbox: Table | None,
        topic: Callable[[str], str],
        emitted: Callable[[], None] = lambda: None,
        floor: OutboxFloor | None = None,
    ) -> None:
        self.sessions = sessions
        self.source = source
        self.outbox = outbox
        self.topic = topic
        self._emitted = emitted  # e.g. wake the relay: new rows wait in the outbox
        self.floor = floor  # the relay's, lowered after each commit that wrote rows

    @property
    def engine(self) -> AsyncEngine:
        return self.sessions.kw["bind"]

    @contextlib.asynccontextmanager
    async def __call__(self, *, notify: bool = True) -> AsyncIterator[UnitOfWork]:
        """A transaction: committed when the block ends, rolled back if it raises.
        ``notify=False``: the caller publishes the outbox itself (consumers do, before
        they commit their offsets)."""
        async with writing(self.engine), self.sessions() as session:
            async with session.begin():
                uow = UnitOfWork(
                    session,
                    source=self.source,
                    outbox=self.outbox,
                    topic=self.topic,
                    floor=self.floor,
                )
                yield uow
                await uow.flush()
        if self.floor is not None and uow.floor_mark is not None:
            # before anything else may start a relay pass
            self.floor.lower_floor(uow.floor_mark)
        uow._committed()
        metrics.committed(self.source.rsplit("/", 1)[-1], uow.payloads)
        if notify and uow.emitted:
            self._emitted()
