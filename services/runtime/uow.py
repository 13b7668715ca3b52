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
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts.envelope import CloudEvent, Payload, new_event
from services.runtime.db import writing
from services.runtime.outbox import enqueue_all, outbox_row

log = logging.getLogger(__name__)


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
    ) -> None:
        self.session = session
        self.source = source
        self._outbox = outbox
        self._topic = topic
        self._after_commit: list[Callable[[], None]] = []
        self._events: list[dict[str, Any]] = []  # outbox rows, written in one statement
        self._now = datetime.now(UTC)
        self.emitted = 0

    def emit(
        self,
        payload: Payload,
        *,
        key: str,
        time: datetime,
        event_id: str | None = None,
        topic: str | None = None,
    ) -> CloudEvent[Any]:
        """Write ``payload`` as an event to the outbox, on the topic its contract names
        (or ``topic``: a carrier's own, without the environment's prefix), keyed by
        ``key`` (the hub id for hub events), at event time ``time``."""
        if self._outbox is None:
            raise RuntimeError(f"{self.source} publishes nothing: it has no outbox")
        event = new_event(payload, source=self.source, subject=key, time=time, event_id=event_id)
        self._events.append(
            outbox_row(event, topic=self._topic(topic or payload.topic), key=key, now=self._now)
        )
        self.emitted += 1
        return event

    async def flush(self) -> None:
        """Write the events emitted so far to the outbox (done before every commit: a
        batch's events cost one statement, not one each)."""
        if self._events and self._outbox is not None:
            events, self._events = self._events, []
            await enqueue_all(self.session, self._outbox, events)

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
    ) -> None:
        self.sessions = sessions
        self.source = source
        self.outbox = outbox
        self.topic = topic
        self._emitted = emitted  # e.g. wake the relay: new rows wait in the outbox

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
                uow = UnitOfWork(session, source=self.source, outbox=self.outbox, topic=self.topic)
                yield uow
                await uow.flush()
        uow._committed()
        if notify and uow.emitted:
            self._emitted()
