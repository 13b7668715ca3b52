"""How a commit that enqueued events wakes the outbox relay of another process.

On PostgreSQL only the relay holding its service's advisory lock publishes, so rows a
second process commits (a standby instance, the HTTP API process) reach it by a poll
unless something tells it. A statement-level trigger on each service's ``outbox`` table
(one migration per service, :func:`create_trigger_sql`) NOTIFYs the service's channel on
every INSERT; PostgreSQL delivers it when the transaction commits, never for a rollback,
and once per transaction however many batches it inserted. The active relay LISTENs with
a :class:`CommitListener`, and its idle poll becomes a slow safety net.

Why a trigger and not a ``SELECT pg_notify(…)`` in ``enqueue_all``: the statement is a
second round trip and costs the writing process ~150-450 µs of CPU per transaction, the
trigger none (bench/outbox_notify.py; docs/booking-throughput.md), and it also covers
rows inserted by any other path.

SQLite has no notifications; its database belongs to one process, whose commits wake
the relay in memory (``OutboxRelay.notify``).

The relay's own process wakes it in memory (its consumers publish the outbox before they
ack, its other commits call ``notify``), so the NOTIFY of such a commit, arriving after
the relay had published the rows, cost an empty pass per batch. The listener therefore
ignores notifications sent by the backends of its engine's own pool (their pids recorded
as the pool connects them; asyncpg has them from the start-up, no round trip). Safe: a
commit of another process, or of another engine, comes from another backend and still
wakes the relay; a commit of this process whose in-process wake-up was missed is
published by the safety poll (``outbox_safety_poll_seconds``), as when a NOTIFY is lost;
and a pid is forgotten when its connection is closed or invalidated, so a pid PostgreSQL
later hands to another process's backend wakes the relay again (only between a backend's
death and the pool noticing it would such a notification wait for the safety poll).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def channel(service: str) -> str:
    """The NOTIFY channel of a service's outbox (channels are per database; the name says
    whose it is for people watching with psql)."""
    return f"microhub_outbox_{service}"


def create_trigger_sql(service: str) -> list[str]:
    """The statements a service's migration runs on PostgreSQL. The payload is empty: the
    relay reads the rows themselves, and equal payloads are folded into one notification
    per transaction."""
    return [
        f"""
        CREATE OR REPLACE FUNCTION microhub_outbox_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{channel(service)}', '');
            RETURN NULL;
        END $$
        """,
        "DROP TRIGGER IF EXISTS outbox_notify ON outbox",
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION microhub_outbox_notify()",
    ]


def drop_trigger_sql() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS outbox_notify ON outbox",
        "DROP FUNCTION IF EXISTS microhub_outbox_notify()",
    ]


class CommitListener:
    """LISTEN on a service's outbox channel, on a connection of its own held while the
    relay is active. A lost connection wakes the relay, which polls at its fast interval
    until :meth:`keep_listening` has listened again (the rows stay in the table: a poll
    finds whatever was committed meanwhile)."""

    def __init__(self, engine: AsyncEngine, service: str, wake: Callable[[], None]) -> None:
        self.engine = engine
        self.channel = channel(service)
        self._wake = wake
        self._listener: tuple[AsyncConnection, Any] | None = None
        self.notifications = 0  # NOTIFYs that woke the relay (observability; tests await it)
        self.own_notifications = 0  # NOTIFYs of this engine's own commits, ignored
        self.listens = 0  # LISTENs that took effect (the first, and one per loss)
        self._own_backends = OwnBackends(engine)

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener[1].is_closed()

    async def keep_listening(self) -> bool:
        """Listen if not listening (again); whether it is. Never raises: without LISTEN
        the relay polls."""
        if self.listening:
            return True
        if self._listener is not None:
            log.warning("outbox listener on %s lost its connection; listening again", self.channel)
            await self.close()
        conn: AsyncConnection | None = None
        try:
            conn = await self.engine.connect()
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None  # None only once the pool closed it; just opened
            await driver.add_listener(self.channel, self._notified)
            driver.add_termination_listener(self._terminated)
        except Exception as exc:
            log.warning("outbox listener cannot LISTEN on %s (polling): %r", self.channel, exc)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.invalidate()
                    await conn.close()
            return False
        self._listener = (conn, driver)
        self.listens += 1
        self._wake()  # what was committed before LISTEN took effect
        return True

    def _notified(self, _connection: Any, pid: int, *_args: Any) -> None:
        if pid in self._own_backends.pids:
            self.own_notifications += 1  # this process woke the relay in memory already
            return
        self.notifications += 1
        self._wake()

    def _terminated(self, *_args: Any) -> None:
        self._wake()  # the relay looks at once, and listens again

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        conn, driver = listener
        with contextlib.suppress(Exception):
            driver.remove_termination_listener(self._terminated)
            if not driver.is_closed():
                # UNLISTEN, or the pooled connection would go on receiving notifications
                await driver.remove_listener(self.channel, self._notified)
            else:
                await conn.invalidate()
        with contextlib.suppress(Exception):
            await conn.close()


class OwnBackends:
    """The server pids of the backends an engine's pool holds now (asyncpg knows each
    connection's from its start-up: no round trip)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.pids: set[int] = set()
        if engine.dialect.name != "postgresql":  # nothing else notifies
            return
        pool_events = engine.sync_engine
        event.listen(pool_events, "connect", self._connected)
        for gone in ("close", "close_detached", "invalidate", "soft_invalidate"):
            event.listen(pool_events, gone, self._gone)

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        self.pids.add(dbapi_connection.driver_connection.get_server_pid())

    def _gone(self, dbapi_connection: Any, *_args: Any) -> None:
        # forgotten early rather than late: an extra wake-up costs a pass, a missed one
        # the safety poll's interval
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None:
            self.pids.discard(driver.get_server_pid())
