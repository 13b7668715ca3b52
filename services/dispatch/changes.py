"""The live queue's change log: what every SSE viewer of a hub's dispatch queue follows.

Write side: whatever changes a hub's queue (the consumers' handlers, the wave timer, the
fleet admin) notes it with :meth:`ChangeLog.record`; when the transaction commits, the
notes become one row of ``hub_changes`` per hub, written *in* that transaction, so a
viewer never sees what was rolled back and never misses what was committed. Rows are
numbered per hub by bumping the hub's row in ``hub_change_heads``: the bump locks that
row until commit, so two transactions about one hub get their numbers in commit order
and a reader that sees number n of a hub has seen every number before it. (A global
autoincrement id would not do: PostgreSQL hands ids out at insert, not at commit, so a
reader could see id 8 before id 7 commits and skip 7 for ever.)

Read side: any process that serves the queue over HTTP — `serve api`, `serve all`, the
demo, whichever dispatch instance consumes the hub's partition — follows the log from
the database, never from another process's memory. On PostgreSQL the writing
transaction also sends a NOTIFY (delivered on commit) that wakes the followers, with a
slow safety poll behind it; SQLite has no notifications and its databases live on one
host, so followers poll it. A process that wrote a change itself wakes its own follower
at once. Rows older than :data:`RETENTION` are pruned: a viewer that far behind is told
to resync, and the snapshot it then gets is current anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from services.dispatch.tables import hub_change_heads as heads
from services.dispatch.tables import hub_changes
from services.runtime.db import cached_statement, dialect_name, is_sqlite

log = logging.getLogger(__name__)

Change = dict[str, Any]
# sent to a viewer that missed changes (pruned, or too slow to keep up): reload
RESYNC: Change = {"kind": "resync"}

CHANNEL = "microhub_dispatch_changes"
# SQLite: one indexed query for the watched hubs per tick, short beside a person's eye.
SQLITE_POLL_SECONDS = 0.25
# PostgreSQL: NOTIFY wakes the followers; this poll only covers a LISTEN connection that
# died unnoticed (and runs as often as SQLite's while there is none).
POSTGRES_SAFETY_POLL_SECONDS = 5.0
# A viewer further behind than this many changes of a hub is told to resync instead of
# being sent them all: the snapshot in the same event is current.
MAX_CATCH_UP = 500
RETENTION = timedelta(minutes=15)
PRUNE_EVERY_SECONDS = 60.0
MAX_BACKLOG = 100  # events queued for one viewer before it is told to resync

_PENDING = "dispatch_changes"  # session.info: (hub id, change) noted in this transaction
_LISTENING = "dispatch_changes_listening"
_WRITTEN = "dispatch_changes_written"

_INSERT_CHANGE = insert(hub_changes)
_HEAD = select(heads.c.version).where(heads.c.hub_id == bindparam("b_hub_id"))
_ROWS_SINCE = (
    select(hub_changes.c.version, hub_changes.c.changes)
    .where(
        hub_changes.c.hub_id == bindparam("b_hub_id"), hub_changes.c.version > bindparam("b_since")
    )
    .order_by(hub_changes.c.version)
)
_NOTIFY = text("SELECT pg_notify(:channel, :hubs)")


def _next_version(session: Session) -> Any:
    """``INSERT … ON CONFLICT DO UPDATE SET version = version + 1 RETURNING version``: the
    hub's next number, and its head row locked until commit (PostgreSQL; SQLite has one
    writer at a time anyway)."""

    def build(dialect_insert: Any) -> Any:
        statement = dialect_insert(heads).values(hub_id=bindparam("b_hub_id"), version=1)
        return statement.on_conflict_do_update(
            index_elements=["hub_id"], set_={"version": heads.c.version + 1}
        ).returning(heads.c.version)

    return cached_statement(session, "hub_change_heads.next", build)


@dataclass(eq=False)
class Subscription:
    """One viewer of one hub: the changes after ``after`` land in ``queue``, a list per
    catch-up."""

    hub_id: str
    after: int
    queue: asyncio.Queue[list[Change]]

    def deliver(self, rows: list[tuple[int, list[Change]]], head: int) -> None:
        fresh = [(version, changes) for version, changes in rows if version > self.after]
        if not fresh and head <= self.after:
            return
        batch: list[Change] = []
        if not fresh or fresh[0][0] != self.after + 1:
            batch.append(RESYNC)  # pruned, or too far behind to be sent every change
        for _, changes in fresh:
            batch.extend(changes)
        self.after = max(head, fresh[-1][0] if fresh else head)
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            # a viewer too slow to keep up does not grow memory: it reloads instead
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait([RESYNC])


class ChangeLog:
    """The change log of one dispatch database: :meth:`record` in transactions,
    :meth:`subscribe` for viewers, :meth:`prune` now and then."""

    def __init__(self, engine: AsyncEngine, *, max_backlog: int = MAX_BACKLOG) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        self.max_backlog = max_backlog
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # stop() also says so by this flag: Python 3.11's asyncio.wait_for loses a
        # cancellation that arrives as the wait it guards completes (a change woke the
        # follower), and the follower would then run on and stop() wait for ever
        self._stopping = False
        self._listener: tuple[AsyncConnection, Any] | None = None
        self.catch_ups = 0  # how often the follower looked
        self.notifications = 0  # NOTIFYs received (PostgreSQL)

    # ----------------------------------------------------------------- writing -------

    def record(self, session: AsyncSession, hub_id: str, kind: str, **detail: Any) -> None:
        """Note a change of ``hub_id``'s queue in ``session``'s transaction; it is
        written to the log when (and only if) the transaction commits."""
        info = session.info
        pending: list[tuple[str, Change]] | None = info.get(_PENDING)
        if pending is None:
            pending = info[_PENDING] = []
            if not info.get(_LISTENING):
                info[_LISTENING] = True
                sync_session = session.sync_session
                sa_event.listen(sync_session, "before_commit", self._write)
                sa_event.listen(sync_session, "after_commit", self._committed)
                sa_event.listen(sync_session, "after_rollback", self._forget)
        pending.append((hub_id, {"kind": kind, **detail}))

    def _write(self, session: Session) -> None:
        """before_commit: still inside the transaction (the async session runs this in
        its greenlet, so the statements may be issued synchronously)."""
        pending: list[tuple[str, Change]] = session.info.pop(_PENDING, None) or []
        if not pending:
            return
        by_hub: dict[str, list[Change]] = defaultdict(list)
        for hub_id, change in pending:
            by_hub[hub_id].append(change)
        at = datetime.now(UTC)
        # every writer takes the head rows in the same order: no deadlock between two
        # transactions that both changed hubs A and B
        for hub_id in sorted(by_hub):
            version = session.execute(_next_version(session), {"b_hub_id": hub_id}).scalar_one()
            session.execute(
                _INSERT_CHANGE,
                {"hub_id": hub_id, "version": version, "at": at, "changes": by_hub[hub_id]},
            )
        if dialect_name(session) == "postgresql":
            # delivered on commit, never for a rollback; the payload is for people
            # watching with psql: followers read the heads of the hubs they watch
            session.execute(_NOTIFY, {"channel": CHANNEL, "hubs": ",".join(sorted(by_hub))[:4000]})
        session.info[_WRITTEN] = True

    def _committed(self, session: Session) -> None:
        if session.info.pop(_WRITTEN, False):
            self.wake()

    def _forget(self, session: Session) -> None:
        session.info.pop(_PENDING, None)
        session.info.pop(_WRITTEN, None)

    async def prune(self, older_than: timedelta = RETENTION) -> int:
        """Delete rows written before ``older_than`` ago (the heads stay: numbers never
        restart)."""
        cutoff = datetime.now(UTC) - older_than
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(hub_changes).where(hub_changes.c.at < cutoff))
        return result.rowcount

    # ----------------------------------------------------------------- following -----

    async def head(self, hub_id: str) -> int:
        """The hub's latest change number (0: none yet)."""
        async with self.engine.connect() as conn:
            version = (await conn.execute(_HEAD, {"b_hub_id": hub_id})).scalar_one_or_none()
        return version or 0

    async def subscribe(self, hub_id: str) -> Subscription:
        """Follow ``hub_id`` from its current head: read the snapshot *after* this, so
        that nothing committed in between is missed (at worst a change the snapshot
        already shows is sent again)."""
        subscription = Subscription(
            hub_id, await self.head(hub_id), asyncio.Queue(maxsize=self.max_backlog)
        )
        self._subscriptions[hub_id].add(subscription)
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._follow(), name="dispatch-change-log")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        watching = self._subscriptions.get(subscription.hub_id)
        if watching is not None:
            watching.discard(subscription)
            if not watching:
                self._subscriptions.pop(subscription.hub_id, None)

    def subscribers(self, hub_id: str) -> int:
        return len(self._subscriptions.get(hub_id, ()))

    def wake(self) -> None:
        """Look at the log now (a change was committed here, or NOTIFY said so)."""
        self._wake.set()

    async def catch_up(self) -> int:
        """Deliver what the watched hubs' viewers have not seen; returns the number of
        log rows read."""
        self.catch_ups += 1
        watched = {
            hub_id: min(s.after for s in subscriptions)
            for hub_id, subscriptions in self._subscriptions.items()
            if subscriptions
        }
        if not watched:
            return 0
        read = 0
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(heads.c.hub_id, heads.c.version).where(heads.c.hub_id.in_(list(watched)))
            )
            for hub_id, head in found.all():
                after = watched[hub_id]
                if head <= after:
                    continue
                # a viewer further behind gets a resync (its rows do not start right
                # after what it saw), the others the changes they miss
                since = max(after, head - MAX_CATCH_UP)
                result = await conn.execute(_ROWS_SINCE, {"b_hub_id": hub_id, "b_since": since})
                rows = [(version, changes) for version, changes in result.all()]
                read += len(rows)
                for subscription in list(self._subscriptions.get(hub_id, ())):
                    subscription.deliver(rows, head)
        return read

    async def _follow(self) -> None:
        backoff = 0.5
        while not self._stopping:
            if not self.sqlite:
                await self._keep_listening()
            poll = (
                POSTGRES_SAFETY_POLL_SECONDS if self._listener is not None else SQLITE_POLL_SECONDS
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)
            self._wake.clear()  # before reading: a change committed meanwhile wakes again
            try:
                await self.catch_up()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "dispatch change log: catch-up failed, again in %.1fs: %r", backoff, exc
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _keep_listening(self) -> None:
        """LISTEN on a connection of its own (held while following); a lost one is
        replaced, and the catch-up that follows reads the heads, so nothing is missed
        while it was gone."""
        if self._listener is not None:
            if not self._listener[1].is_closed():
                return
            log.warning("dispatch change log: the LISTEN connection was lost; listening again")
            await self._unlisten()
        conn: AsyncConnection | None = None
        try:
            conn = await self.engine.connect()
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            # None only once the pool has closed or invalidated it; this one was just opened
            assert driver is not None
            await driver.add_listener(CHANNEL, self._notified)
        except BaseException as exc:
            # also when stop() cancels the follower here: the connection is not ours to
            # keep yet (stop's UNLISTEN does not know it), so it is closed, not pooled
            # with a listener half added
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.invalidate()
                    await conn.close()
            if not isinstance(exc, Exception):
                raise
            log.warning("dispatch change log: cannot LISTEN (polling meanwhile): %r", exc)
            return
        self._listener = (conn, driver)
        self.wake()  # whatever was committed before LISTEN took effect

    @property
    def listening(self) -> bool:
        """PostgreSQL: woken by NOTIFY (not only by the safety poll)."""
        return self._listener is not None and not self._listener[1].is_closed()

    def _notified(self, *_args: Any) -> None:
        self.notifications += 1
        self._wake.set()

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        conn, driver = listener
        with contextlib.suppress(Exception):
            if not driver.is_closed():
                # UNLISTEN, or the pooled connection would keep receiving notifications
                await driver.remove_listener(CHANNEL, self._notified)
            else:
                await conn.invalidate()
        with contextlib.suppress(Exception):
            await conn.close()

    async def stop(self) -> None:
        """Stop following (viewers still connected get no more changes)."""
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._unlisten()
