"""Many rows inserted by the database driver's own ``executemany``.

A batch's bulk INSERTs (a booking batch's bookings, every service's outbox rows) went
through SQLAlchemy's per-row parameter machinery: for each row a parameter dictionary
built, and each value looked up and passed through its type's processor in generic
Python. That was most of what writing a row cost (docs/booking-throughput.md). Here the
values still go through the very processors SQLAlchemy would apply (the column types'
own bind processors, so what is stored is the same), in one tight loop per row, and the
rows go to the driver as tuples: asyncpg's ``executemany`` (one prepared statement) on
PostgreSQL, sqlite3's on SQLite. Rows are inserted in list order, so autoincremented ids
follow it (the outbox's publication order relies on that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    encode: Callable[[dict[str, Any]], tuple[Any, ...]]  # a row -> the driver's values


def _row_encoder(
    columns: tuple[str, ...],
    processors: tuple[Callable[[Any], Any] | None, ...],
    constants: tuple[Any, ...],
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Every value through its column's processor (None too: a JSON column writes it as
    null), then the constants."""
    pairs = tuple(zip(columns, processors, strict=True))

    def encode(row: dict[str, Any]) -> tuple[Any, ...]:
        return (*[row[c] if p is None else p(row[c]) for c, p in pairs], *constants)

    return encode


_PLANS: dict[tuple[str, Table, tuple[str, ...]], _Plan] = {}


def _plan(dialect: Any, table: Table, columns: tuple[str, ...]) -> _Plan:
    key = (dialect.name, table, columns)
    known = _PLANS.get(key)
    if known is not None:
        return known
    left_out: list[tuple[str, Any]] = []
    for column in table.columns:
        if column.name in columns or column.server_default is not None:
            continue
        if column.primary_key and column.autoincrement in (True, "auto"):
            continue  # the database numbers it
        default = column.default
        if default is None and column.nullable:
            continue
        if default is None or not getattr(default, "is_scalar", False):
            raise ValueError(f"{table.name}.{column.name}: the rows must give it")
        left_out.append((column.name, default.arg))  # type: ignore[attr-defined]
    names = (*columns, *(name for name, _ in left_out))
    preparer = dialect.identifier_preparer
    if dialect.paramstyle == "numeric_dollar":  # asyncpg
        marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    elif dialect.paramstyle == "qmark":  # sqlite3
        marks = ", ".join("?" for _ in names)
    else:  # pragma: no cover - the two drivers microhub runs on
        raise ValueError(f"no bulk INSERT for the {dialect.paramstyle!r} parameter style")
    sql = (
        f"INSERT INTO {preparer.format_table(table)} "
        f"({', '.join(preparer.quote(n) for n in names)}) VALUES ({marks})"
    )
    processors = tuple(table.c[n].type._cached_bind_processor(dialect) for n in names)
    given, defaults = processors[: len(columns)], processors[len(columns) :]
    constants = tuple(
        v if p is None else p(v) for p, (_, v) in zip(defaults, left_out, strict=True)
    )
    plan = _PLANS[key] = _Plan(sql, _row_encoder(columns, given, constants))
    return plan


async def insert_many(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ``rows`` into ``table`` inside the session's transaction, in order. A column
    a row leaves out takes its server default, or its Python-side constant default; any
    other is an error. Rows that give different columns go in separate statements (one
    per run of rows with the same keys, so that the order holds)."""
    if not rows:
        return
    connection = await session.connection()
    dialect = connection.dialect
    start = 0
    while start < len(rows):
        keys = rows[start].keys()
        end = start + 1
        while end < len(rows) and rows[end].keys() == keys:
            end += 1
        columns = tuple(keys)
        plan = _plan(dialect, table, columns)
        values = [plan.encode(row) for row in rows[start:end]]
        await connection.exec_driver_sql(plan.sql, values)
        start = end
