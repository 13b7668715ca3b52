"""Many rows inserted in one statement execution on PostgreSQL, by ``executemany`` on SQLite.

A batch's bulk INSERTs (a booking batch's bookings and slots, every service's outbox
rows) went through SQLAlchemy's per-row parameter machinery: for each row a parameter
dictionary built, and each value looked up and passed through its type's processor in
generic Python. That was most of what writing a row cost (docs/booking-throughput.md).
Here the values still go through the very processors SQLAlchemy would apply (the column
types' own bind processors, so what is stored is the same), in one tight loop per row,
and the rows go to the driver without SQLAlchemy:

- PostgreSQL: one array per column, ``INSERT … SELECT … FROM unnest(…)``. One prepared
  statement executed once, whatever the batch's size: asyncpg's ``executemany`` had been
  one execution per row in the server (12 to 31 µs each, ``pg_stat_statements``), the
  largest part of PostgreSQL's own CPU per decision after the relay's read.
- SQLite: sqlite3's ``executemany`` (in process: an execution per row costs no round
  trip there).

Rows are inserted in list order, so autoincremented ids follow it (the outbox's
publication order relies on that): on PostgreSQL the ``unnest`` is read ``WITH
ORDINALITY`` and ordered by it, and the INSERT takes the column defaults (the id's
``nextval``) above that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, String, Table
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    # rows -> their given values: SQLite, a tuple per row; PostgreSQL, a list per column
    encode: Callable[[Sequence[dict[str, Any]]], list[Any]]
    constants: tuple[Any, ...]  # the driver's values of the defaults the rows leave out
    arrays: bool  # PostgreSQL: the given values as one array per column


def _encoder(
    columns: tuple[str, ...], processors: tuple[Callable[[Any], Any] | None, ...], *, arrays: bool
) -> Callable[[Sequence[dict[str, Any]]], list[Any]]:
    """Every value through its column's processor (None too: a JSON column writes it as
    null). For arrays the values are gathered column by column, as they are sent."""
    pairs = tuple(zip(columns, processors, strict=True))
    if arrays:

        def by_column(rows: Sequence[dict[str, Any]]) -> list[Any]:
            return [
                [row[c] for row in rows] if p is None else [p(row[c]) for row in rows]
                for c, p in pairs
            ]

        return by_column

    def by_row(rows: Sequence[dict[str, Any]]) -> list[Any]:
        return [tuple([row[c] if p is None else p(row[c]) for c, p in pairs]) for row in rows]

    return by_row


def pg_cast_type(type_: Any, dialect: Any) -> str:
    """The PostgreSQL type a parameter of a column of ``type_`` is cast to. Text without
    a length: a cast to VARCHAR(n) would cut a longer value silently, where the
    INSERT's or UPDATE's assignment refuses it."""
    return "VARCHAR" if isinstance(type_, String) else str(type_.compile(dialect=dialect))


def _pg_type(table: Table, name: str, dialect: Any) -> tuple[str, str]:
    """(the type an array parameter of the column is cast to, how its element becomes the
    column's value). JSON travels as text (the processor's output) and is cast per
    element, as a scalar JSON parameter is."""
    type_ = table.c[name].type
    if isinstance(type_, JSON):
        return "TEXT", "CAST({} AS JSON)"
    return pg_cast_type(type_, dialect), "{}"


_PLANS: dict[tuple[str, Table, tuple[str, ...], tuple[str, ...], bool], _Plan] = {}


def _plan(
    dialect: Any, table: Table, columns: tuple[str, ...], unique: tuple[str, ...], replace: bool
) -> _Plan:
    key = (dialect.name, table, columns, unique, replace)
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
    into = (
        f"INSERT INTO {preparer.format_table(table)} "
        f"({', '.join(preparer.quote(n) for n in names)}) "
    )
    conflict = ""
    if unique:
        conflict = f" ON CONFLICT ({', '.join(preparer.quote(n) for n in unique)}) DO "
        changed = [preparer.quote(n) for n in columns if n not in unique]
        conflict += (
            f"UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in changed)}"
            if replace and changed
            else "NOTHING"
        )
    if dialect.paramstyle == "numeric_dollar":  # asyncpg
        types = [_pg_type(table, n, dialect) for n in names]
        fields = [f"c{i}" for i in range(len(columns))]
        arrays = ", ".join(f"${i + 1}::{types[i][0]}[]" for i in range(len(columns)))
        values = [types[i][1].format(f"u.{f}") for i, f in enumerate(fields)]
        values += [
            types[i][1].format(f"${i + 1}::{types[i][0]}") for i in range(len(columns), len(names))
        ]
        sql = (
            f"{into}SELECT {', '.join(values)} FROM unnest({arrays}) WITH ORDINALITY "
            f"AS u ({', '.join(fields)}, n) ORDER BY u.n{conflict}"
        )
    elif dialect.paramstyle == "qmark":  # sqlite3
        sql = f"{into}VALUES ({', '.join('?' for _ in names)}){conflict}"
    else:  # pragma: no cover - the two drivers microhub runs on
        raise ValueError(f"no bulk INSERT for the {dialect.paramstyle!r} parameter style")
    processors = tuple(table.c[n].type._cached_bind_processor(dialect) for n in names)
    given, defaults = processors[: len(columns)], processors[len(columns) :]
    constants = tuple(
        v if p is None else p(v) for p, (_, v) in zip(defaults, left_out, strict=True)
    )
    by_column = dialect.paramstyle == "numeric_dollar"
    plan = _PLANS[key] = _Plan(
        sql, _encoder(columns, given, arrays=by_column), constants, by_column
    )
    return plan


async def insert_many(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    skip_existing: tuple[str, ...] = (),
    replace_existing: tuple[str, ...] = (),
) -> None:
    """INSERT ``rows`` into ``table`` inside the session's transaction, in order. A column
    a row leaves out takes its server default, or its Python-side constant default; any
    other is an error. Rows that give different columns go in separate statements (one
    per run of rows with the same keys, so that the order holds).

    The columns of a unique key, for rows whose key may be taken: ``skip_existing``
    leaves such a row out (``ON CONFLICT DO NOTHING``); ``replace_existing`` sets the
    existing row's other given columns to the row's (``DO UPDATE``: an UPDATE of many
    rows in one execution, each found by the key's index whatever the planner thinks
    of a join with the arrays). A key may appear once in ``rows`` then."""
    if skip_existing and replace_existing:
        raise ValueError("skip_existing or replace_existing, not both")
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
        plan = _plan(
            dialect,
            table,
            tuple(keys),
            skip_existing or replace_existing,
            bool(replace_existing),
        )
        values = plan.encode(rows[start:end])
        if plan.arrays:
            await connection.exec_driver_sql(plan.sql, (*values, *plan.constants))
        else:
            await connection.exec_driver_sql(plan.sql, [(*row, *plan.constants) for row in values])
        start = end
