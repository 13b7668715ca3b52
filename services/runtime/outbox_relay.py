"""The outbox relay: publishes a service's outbox (outbox.py).

The :class:`OutboxRelay` publishes unsent rows in id order (so in order per key), in
batches, marks them sent, and retries with backoff while Kafka is unreachable. A crash
between publishing and marking re-publishes the same event ids: consumers dedupe them in
their inbox.

A relay that takes over from one that died (a SIGKILLed process, a lost PostgreSQL
lock) first *reconciles*: every record it publishes carries the row's id in a header, so
it reads the outbox topics back from the oldest pending row's time and marks the rows
already there as sent. Without that, the rows its predecessor published but had not yet
marked would reach consumers (and carriers) a second time.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.runtime.db import is_sqlite, writing
from services.runtime.outbox import (
    OUTBOX_HEADER,
    OUTBOX_ID_HEADER,
    FindPublished,
    OutboxRecord,
    Publish,
    PublishBatch,
    batch_over,
    mark_sent,
    pending_count,
    settle,
)
from services.runtime.outbox_tail import mark_already_published
from services.runtime.outbox_wakeup import CommitListener

_NO_FLOOR = 2**63  # above any outbox id: no floor was asked for

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publishes the outbox of one service. One relay per service publishes at a time: on
    PostgreSQL it holds an advisory lock (other instances stand by), so the order per key
    survives several instances; SQLite databases belong to one process anyway."""

    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        outbox: Table,
        publish: Publish | None = None,
        publish_batch: PublishBatch | None = None,
        batch_size: int = 200,
        poll_interval: float = 0.05,
        safety_poll_interval: float = 5.0,
        max_backoff: float = 5.0,
        find_published: FindPublished | None = None,
    ) -> None:
        self.service = service
        self.engine = engine
        self.outbox = outbox
        # a pass is published as one batch: one await for all its acks (the service's
        # producer settles it once); a per-record ``publish`` is adapted to that
        if publish_batch is None:
            if publish is None:
                raise TypeError("OutboxRelay needs publish or publish_batch")
            publish_batch = batch_over(publish)
        self.publish_batch = publish_batch
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.safety_poll_interval = safety_poll_interval
        self.max_backoff = max_backoff
        self.find_published = find_published
        self._wake = asyncio.Event()
        # The least id a pass reads from. The read of pending rows walks the index
        # (sent_at, id) from its start, and every row sent since the last vacuum leaves
        # a dead entry there: from 0 the read grew to ~2.7 ms a pass under load
        # (docs/booking-throughput.md). A pass moves the floor past what it read; what
        # may commit below it lowers it again: this process's units of work (by the
        # floor they saw before writing, see `floor_mark`), anything else (another
        # process's NOTIFY, a lost connection, a caller of `notify`, the safety poll)
        # to 0.
        self._floor = 0
        self._lowered = _NO_FLOOR  # the least floor asked for while a pass ran
        # PostgreSQL: commits of other processes wake the active relay by NOTIFY; its
        # idle poll is then only a safety net (outbox_wakeup)
        self.listener = CommitListener(engine, service, self.notify)
        # one relay pass at a time: the loop and consumers publishing before they ack
        self._pass = asyncio.Lock()
        self._drains: set[asyncio.Task[None]] = set()  # passes consumers started
        self._active = False  # this instance publishes (SQLite, or holds the PG lock)
        # set once this instance knows its role: active (lock held, reconciled) or standby;
        # until then a consumer's publish_now waits, or it would ack ahead of its events
        self._role_known = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.published = 0
        self.failures = 0
        self.passes = 0  # reads of the outbox (observability; tests await it)
        self.acks_late = 0  # consumers that acked before their events were published
        self.reconciled = 0  # rows found already published when this relay took over
        # a pass's two statements, built once (building a select anew costs more CPU than
        # running it: ~0.4 ms, on every idle poll and before every consumer's ack)
        o = outbox
        self._pending = (
            select(o.c.id, o.c.topic, o.c.key, o.c.payload, o.c.event_type)
            .where(o.c.sent_at.is_(None), o.c.id >= bindparam("floor"))
            .order_by(o.c.id)
            .limit(batch_size)
        )
        # PostgreSQL: a pass's read and its marks are single statements, each atomic on
        # its own; in autocommit they skip the BEGIN and COMMIT round trips (four of a
        # pass's six, on every consumer batch's path to its offset commit). SQLite keeps
        # its sessions: its BEGIN costs no round trip, and writes queue on `writing`.
        self._autocommit = (
            None if is_sqlite(engine) else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._mark_sent = mark_sent(o, sqlite=is_sqlite(engine))

    def notify(self) -> None:
        """Called after a transaction that enqueued events committed, rows of unknown
        ids: read from the start, soon."""
        self.lower_floor(0)
        self._wake.set()

    def wake(self) -> None:
        """Publish soon (the committed rows lowered the floor already, `lower_floor`)."""
        self._wake.set()

    def floor_mark(self) -> int:
        """What a unit of work notes before it writes outbox rows, and passes to
        `lower_floor` once they are committed. Never above their ids: the floor is
        only ever raised past ids a finished pass read, so those were taken before the
        mark, and ids are taken in increasing order (a sequence without a cache,
        SQLite's single writer)."""
        return self._floor

    def lower_floor(self, mark: int) -> None:
        """Rows at ``mark`` or above were committed: the next pass reads from there."""
        self._floor = min(self._floor, mark)
        self._lowered = min(self._lowered, mark)

    async def publish_now(self, timeout: float) -> None:
        """Publish what is pending before the caller acknowledges its input, so that a
        consumer group's committed offset never runs ahead of the events its records
        caused: once a record's offset is committed, its consequences are in Kafka.

        Returns once the broker acked them: marking the rows sent comes after, off the
        caller's path (a crash in between publishes them again, as any crash between
        publishing and marking does; the consumers' inboxes drop the copies).

        Best effort: if this instance is not the active relay, or Kafka does not ack
        within ``timeout``, the caller goes on and the pass goes on without it: it marks
        its rows when their acks come. It is never cancelled halfway, which would leave
        records in the producer's buffer that a later pass sends again (duplicates).
        """
        if not self._role_known.is_set():
            # a process just started: its consumers may run before the relay has taken
            # over (and reconciled); committing their offsets now would run ahead
            try:
                await asyncio.wait_for(self._role_known.wait(), timeout)
            except TimeoutError:
                self.acks_late += 1
                return
        if not self._active:
            self._wake.set()
            return
        acked: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        drain = asyncio.create_task(self._drain(acked), name=f"outbox-drain-{self.service}")
        self._drains.add(drain)
        drain.add_done_callback(self._drain_done)
        try:
            error = await asyncio.wait_for(asyncio.shield(acked), timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.acks_late += 1
            log.warning("outbox of %s not published within %.1f s of ack", self.service, timeout)
            return
        if error is not None:  # counted in _drain_done; the loop retries the rows
            log.warning("outbox of %s not published before ack: %r", self.service, error)

    async def _drain(self, acked: asyncio.Future[BaseException | None]) -> None:
        """Passes until what was pending is published; ``acked`` is settled once the
        broker acked all of it (before the last pass marks its rows), or with the error
        that stopped the passes."""

        def published(count: int) -> None:
            # a pass that read less than a batch read everything committed before it
            if count < self.batch_size and not acked.done():
                acked.set_result(None)

        try:
            async with self._pass:
                while await self.relay_once(published) >= self.batch_size:
                    pass
        except Exception as exc:
            if not acked.done():
                acked.set_result(exc)
            raise
        finally:
            if not acked.done():
                acked.set_result(None)

    def _drain_done(self, drain: asyncio.Task[None]) -> None:
        self._drains.discard(drain)
        if not drain.cancelled() and drain.exception() is not None:
            self.failures += 1  # the rows stay pending: the loop retries them
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}")

    async def stop(self, *, flush_timeout: float = 10.0) -> None:
        """Publish what is pending (up to ``flush_timeout``), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout=flush_timeout)
        except (TimeoutError, Exception) as exc:
            log.warning("outbox of %s not fully flushed on stop: %s", self.service, exc)
        for drain in list(self._drains):
            drain.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
        self._stopping = True
        self._wake.set()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def flush(self) -> None:
        """Wait until every row enqueued so far is published."""
        while True:
            async with AsyncSession(self.engine) as session:
                if await pending_count(session, self.outbox) == 0:
                    return
            self._wake.set()
            await asyncio.sleep(self.poll_interval)

    async def _run(self) -> None:
        lock_key = zlib.crc32(f"microhub-outbox-{self.service}".encode())
        if is_sqlite(self.engine):
            await self._take_over()
            self._active = True
            self._role_known.set()
            try:
                await self._loop()
            finally:
                self._active = False
            return
        while not self._stopping:
            async with self.engine.connect() as lock_conn:
                got = (
                    await lock_conn.execute(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key}
                    )
                ).scalar_one()
                if got:
                    try:
                        await self._take_over()
                        self._active = True
                        self._role_known.set()
                        await self._loop()
                    finally:
                        self._active = False
                        await self.listener.close()
                        await lock_conn.execute(
                            text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key}
                        )
                    return
            self._role_known.set()  # another instance relays; stand by
            await asyncio.sleep(1.0)

    async def _take_over(self) -> None:
        """Reconcile before the first pass, retrying while Kafka is away: publishing
        before knowing what the predecessor published would publish it twice."""
        self.lower_floor(0)  # a predecessor's rows, whatever this instance saw before
        backoff = 0.1
        while not self._stopping:
            try:
                self.reconciled += await self.reconcile()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                log.warning(
                    "outbox of %s not reconciled, retrying in %.1fs: %r", self.service, backoff, exc
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def reconcile(self) -> int:
        """Mark pending rows that are already in Kafka as sent; returns how many."""
        if self.find_published is None:
            return 0
        marked = await mark_already_published(self.engine, self.outbox, self.find_published)
        if marked:
            log.info("outbox of %s: %d rows were already published", self.service, marked)
        return marked

    async def _loop(self) -> None:
        backoff = 0.1
        listens = not is_sqlite(self.engine)
        while not self._stopping:
            # cleared before the pass reads: a commit (or NOTIFY) during the pass wakes
            # the wait below at once instead of waiting for the next poll
            self._wake.clear()
            try:
                async with self._pass:
                    sent = await self.relay_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                log.warning(
                    "outbox relay of %s failed, retrying in %.1fs: %s", self.service, backoff, exc
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if sent < self.batch_size:
                idle = self.poll_interval
                if listens and await self.listener.keep_listening():
                    idle = max(self.poll_interval, self.safety_poll_interval)
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=idle)
                except TimeoutError:
                    self.lower_floor(0)  # the safety poll reads everything pending

    async def relay_once(self, published: Callable[[int], None] | None = None) -> int:
        """Publish one batch of unsent rows in order; returns how many were sent.
        ``published`` hears how many, once the broker acked them all (before they are
        marked sent), unless one failed."""
        o = self.outbox
        self.passes += 1
        self._lowered = _NO_FLOOR
        read_from = {"floor": self._floor}
        if self._autocommit is not None:
            async with self._autocommit.connect() as conn:
                rows = (await conn.execute(self._pending, read_from)).all()
        else:
            async with AsyncSession(self.engine) as session:
                rows = (await session.execute(self._pending, read_from)).all()
        if not rows:
            return 0
        service = self.service
        records: list[OutboxRecord] = [
            (
                row.topic,
                row.key.encode(),
                row.payload,
                {"ce_type": row.event_type, OUTBOX_HEADER: service, OUTBOX_ID_HEADER: str(row.id)},
            )
            for row in rows
        ]
        sent_ids, failed_ids, first_error = settle(rows, await self.publish_batch(records))
        if published is not None and first_error is None:
            published(len(rows))
        marks: list[tuple[Any, dict[str, Any]]] = []
        if sent_ids:
            marks.append((self._mark_sent, {"ids": sent_ids, "sent_at": datetime.now(UTC)}))
        if failed_ids:
            marks.append(
                (
                    update(o)
                    .where(o.c.id.in_(failed_ids))
                    .values(attempts=o.c.attempts + 1, last_error=str(first_error)[:1000]),
                    {},
                )
            )
        if self._autocommit is not None:
            async with self._autocommit.connect() as conn:
                for statement, values in marks:
                    await conn.execute(statement, values)
        else:
            async with writing(self.engine), AsyncSession(self.engine) as session:
                async with session.begin():
                    for statement, values in marks:
                        await session.execute(statement, values)
        self.published += len(sent_ids)
        # past what this pass read, but not past a row it left pending, nor past what
        # was committed below while it ran
        past = min(failed_ids) if failed_ids else rows[-1].id + 1
        self._floor = min(past, self._lowered)
        if first_error is not None:
            raise first_error
        return len(rows)
