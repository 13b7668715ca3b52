"""Database engines and sessions, one database per service.

SQLite (embedded default) and PostgreSQL (production) are both first-class: the same
tables, queries and migrations run on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, TypeDecorator, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Autoincrementing 64-bit ids on PostgreSQL; SQLite only autoincrements INTEGER keys.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING)


def normalise_url(url: str) -> str:
    """Accept the plain forms people paste (postgresql://, sqlite:///) and pick the async
    drivers we ship (asyncpg, aiosqlite)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername != "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite" and parsed.drivername != "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend not in {"postgresql", "sqlite"}:
        raise ValueError(
            f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}: "
            "use postgresql://… or sqlite:///…"
        )
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine_or_url: AsyncEngine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, sqlite_inline: bool = False) -> AsyncEngine:
    """An engine for ``url``. ``sqlite_inline``: run SQLite statements on the event loop's
    thread (see services/runtime/sqlite_async.py; MICROHUB_SQLITE_INLINE_STATEMENTS)."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        from services.runtime.sqlite_async import connector

        # the file path as SQLAlchemy's pysqlite dialect would pass it to the driver
        (database,), _ = create_async_engine(url).dialect.create_connect_args(parsed)
        # inline, a wait for another connection's lock blocks the loop: keep it short
        busy_ms = 5000 if sqlite_inline else 30000
        creator = connector(
            database, inline=sqlite_inline, timeout=busy_ms / 1000, check_same_thread=False
        )
        engine = create_async_engine(
            url, async_creator=creator, json_serializer=_json_dumps, json_deserializer=orjson.loads
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            # WAL lets the HTTP API read while a consumer writes; foreign keys are off by
            # default in SQLite.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        # Every execution planned with its parameters. asyncpg prepares each statement,
        # and after five executions PostgreSQL may keep a generic plan made from the
        # statistics of that moment: a booking table that was nearly empty then was read
        # by a sequential scan, comparing every row with every id of a batch (50 to 95 ms a
        # read at 1 000 commands/s after ten thousand bookings, until an ANALYZE
        # replanned it; docs/booking-throughput.md). Planning these short statements
        # costs far less than one such read.
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
    )
    ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection idle longer than this is pinged before it is used again.
PING_IDLE_AFTER_SECONDS: Final = 1.0


def ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling, only where it can find something: a connection
    checked in less than :data:`PING_IDLE_AFTER_SECONDS` ago is handed out as it is, an older one is pinged
    first and replaced if the ping fails (SQLAlchemy's checkout-event recipe).

    ``pool_pre_ping`` pinged on every checkout, and asyncpg's ping is three round trips
    (BEGIN, ``;``, ROLLBACK): nine per booking batch (the consumer's transaction and the
    relay's two), more than the batch's own statements on a lone command's path
    (docs/booking-throughput.md). A connection the server dropped within the second
    (a restart) fails its statement instead: SQLAlchemy then invalidates the pool, and
    the caller's retry (a consumer's transient-failure retry) gets a new connection."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_since(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # the server's goodbye already read (asyncpg's own connection; SQLAlchemy's
        # asyncpg dialect asks it the same in is_disconnect): no round trip needed
        if dbapi_connection._connection.is_closed():
            raise sa_exc.DisconnectionError("the server closed this pooled connection")
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_AFTER_SECONDS:
            return  # just connected, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces it and checks out again
            raise sa_exc.DisconnectionError(f"idle connection is gone: {exc!r}") from exc


def _json_dumps(value: Any) -> str:
    """JSON columns (a booking's request and outcome, …) through orjson: the standard
    library's encoder was the largest single cost of a booking decision (see
    docs/booking-throughput.md); reading back is plain JSON either way."""
    return orjson.dumps(value).decode()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# instants whose SQLite text a bind processor keeps (a few hundred kB at most)
_DATETIME_TEXTS = 4096


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored and returned as UTC-aware datetimes on PostgreSQL and SQLite alike
    (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: microhub stores aware timestamps only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Any) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite stores the text SQLAlchemy's DATETIME writes, "2026-11-30 16:52:40.998397"
        # (naive UTC, always six digits of microseconds: compared as text); written here
        # by one C call, ~2 µs instead of ~5 for the naive copy and a %-format. A decision
        # binds eight (a booking's slot start and end, its decision and update time, the
        # slot's row, the outbox row's), most of them instants the batch has bound
        # already (a slot's start, the batch's clock, a command's time twice): the text
        # of each is kept, looked up in ~0.05 µs (a UTC instant hashes in C; one with
        # pydantic's offset type takes ~1 µs, so it is converted first). Equal instants
        # are the same UTC text, so the key's own offset does not matter.
        texts: dict[datetime, str] = {}

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:
                if value.tzinfo is None:
                    raise ValueError(
                        f"naive datetime {value!r}: microhub stores aware timestamps only"
                    )
                value = value.astimezone(UTC)
            text = texts.get(value)
            if text is None:
                if len(texts) >= _DATETIME_TEXTS:
                    texts.clear()
                text = texts[value] = value.isoformat(" ", "microseconds")[:-6]
            return text

        return process

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def dialect_name(session: Any) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def _insert_of(dialect: str) -> Callable[..., Any]:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return pg_insert if dialect == "postgresql" else sqlite_insert


def dialect_insert(session: Any) -> Callable[..., Any]:
    """The INSERT construct of the session's database, for ON CONFLICT clauses (the same
    statement on PostgreSQL and SQLite)."""
    return _insert_of(dialect_name(session))


T = TypeVar("T")

_STATEMENTS: dict[tuple[str, Hashable], Any] = {}


def cached_statement(session: Any, key: Hashable, build: Callable[[Callable[..., Any]], T]) -> T:
    """A statement built once per database dialect and ``key``, by ``build(insert)`` with
    the dialect's INSERT construct (for ON CONFLICT clauses).

    Building a statement, and hashing literal values into its cache key, costs more CPU
    than running it on a hot path: prebuilt statements take their values as bind
    parameters at execution (``session.execute(stmt, {...})``) instead. ``key`` names the
    statement, with the Table when one function serves several services' tables.
    """
    dialect = dialect_name(session)
    try:
        return _STATEMENTS[dialect, key]
    except KeyError:
        statement = _STATEMENTS[dialect, key] = build(_insert_of(dialect))
        return statement


def insert_ignoring(session: Any, table: Any, *key: str) -> Any:
    """``INSERT … ON CONFLICT (key) DO NOTHING`` into ``table``, built once per dialect;
    the values come as parameters at execution. ``rowcount`` is 1 when the row is new."""
    return cached_statement(
        session,
        ("insert_ignoring", table, key),
        lambda insert: insert(table).on_conflict_do_nothing(index_elements=list(key)),
    )


def upsert(session: Any, table: Any, key: str, *update_columns: str) -> Any:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` of ``update_columns``, built once per
    dialect; the values come as parameters at execution."""

    def build(insert: Callable[..., Any]) -> Any:
        statement = insert(table)
        return statement.on_conflict_do_update(
            index_elements=[key], set_={c: statement.excluded[c] for c in update_columns}
        )

    return cached_statement(session, ("upsert", table, key, update_columns), build)


def rowcount(result: Result[Any]) -> int:
    """The rows an INSERT, UPDATE or DELETE changed. ``Session.execute`` is typed to
    return a ``Result`` (an ORM query may come back as another kind), but a Core
    statement's result is the DBAPI cursor's, a ``CursorResult``, which has the count."""
    assert isinstance(result, CursorResult), f"no row count on a {type(result).__name__}"
    return result.rowcount


_WRITERS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold around a write transaction. SQLite has one writer at a time, and a connection
    that finds the database locked waits by sleeping (1, 2, 5, … 100 ms steps), so two
    consumers of one service writing at once cost tens of milliseconds each time. Writers
    of one process queue on an asyncio lock instead and start the moment the previous
    one commits. On PostgreSQL (row locks) this does nothing."""
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _WRITERS.get(engine.sync_engine)
    if lock is None:
        lock = _WRITERS[engine.sync_engine] = asyncio.Lock()
    async with lock:
        yield
