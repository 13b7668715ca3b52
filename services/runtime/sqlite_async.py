"""aiosqlite with one thread hop per statement instead of four.

SQLAlchemy's aiosqlite adapter opens a cursor, executes, fetches and closes each as its
own call into aiosqlite's worker thread: four hand-overs between the event loop and the
thread per statement, which cost more CPU than SQLite's own work on our small
transactions (measured: ~0.9 ms of CPU per statement against ~0.3 ms with the plain
synchronous driver). Here a statement is executed, fetched and closed in one call on
the same worker thread. Everything else (the thread, WAL concurrency, the busy
timeout, transactions, errors) is aiosqlite's, unchanged.

With ``inline=True`` the statement runs on the event loop's thread instead, with no
hand-over at all (measured: dispatch's statements 0.5 -> 0.1 ms each). That blocks the
loop for the statement's duration, and for as long as SQLite waits for a lock another
connection holds, so it is only for a process whose writers of a database queue on
:func:`services.runtime.db.writing` (the demo's services do) and whose other writers
are few (the busy timeout is then kept short).

Used through ``create_async_engine(..., async_creator=...)``: see :func:`connector`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite


def _run(
    conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, list[Any] | None, int, int | None]:
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class Cursor:
    """The part of aiosqlite's cursor that SQLAlchemy's adapter uses; rows are fetched
    with the statement, so fetching never goes back to the thread."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, operation: str, parameters: Any, many: bool) -> Cursor:
        inner = self._connection._inner
        if self._connection.inline:
            result = _run(inner._conn, operation, parameters, many)
        else:
            result = await inner._execute(_run, inner._conn, operation, parameters, many)
        self.description, rows, self.rowcount, self.lastrowid = result
        self._rows = rows or []
        return self

    async def execute(self, operation: str, parameters: Any = None) -> Cursor:
        return await self._call(operation, parameters, False)

    async def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> Cursor:
        return await self._call(operation, seq_of_parameters, True)

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        self._rows = []

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


class Connection:
    """An aiosqlite connection whose cursors are :class:`Cursor`; everything else is
    delegated to aiosqlite (commit, rollback, close, functions, its worker thread)."""

    def __init__(self, inner: aiosqlite.Connection, *, inline: bool = False) -> None:
        self._inner = inner
        self.inline = inline

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def execute(self, operation: str, parameters: Any = None) -> Cursor:
        return await Cursor(self).execute(operation, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def connector(database: str, *, inline: bool = False, **kwargs: Any) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy's ``sqlite+aiosqlite`` dialect."""

    async def create() -> Connection:
        inner = aiosqlite.connect(database, **kwargs)
        # aiosqlite's worker thread is not a daemon: one connection left open (a pool
        # not disposed, a task cancelled mid-query) would keep the interpreter from
        # exiting. SQLAlchemy's own aiosqlite dialect does the same; since aiosqlite 0.22
        # the thread is an attribute, before that the connection was the thread.
        thread = inner if isinstance(inner, threading.Thread) else inner._thread
        thread.daemon = True
        return Connection(await inner, inline=inline)

    return create
