"""A batch's inbox claim, look-up, record and kept answers as one statement each, by the
driver.

Through SQLAlchemy, the claim (``INSERT … ON CONFLICT DO NOTHING RETURNING``) and the
kept answers (``UPDATE … SET answer`` per command) built a parameter dictionary per row
and passed every value through its processor in generic code, rendered the claim's
rows as a multi-row ``VALUES`` ("insertmanyvalues"), and sent the answers one
statement execution each: about 7 % of a loaded booking consumer's CPU
(docs/booking-throughput.md). Here the values still go through the columns' own bind
processors (a timestamp, a JSON answer: what is stored is the same), and the driver
gets one statement with few parameters:

- PostgreSQL: the rows as one array per column, ``INSERT … SELECT … FROM unnest(…)``
  and ``UPDATE … FROM unnest(…)``: one prepared statement whatever the batch's size.
- SQLite: the claim as a multi-row ``VALUES`` of plain parameters (up to 500 rows a
  statement), the answers by sqlite3's ``executemany``. The rows as one JSON array read
  by ``json_each`` cost the same, but SQLite's ``->>`` cuts a text at a NUL character:
  an event id with one would have been claimed under another id.

The claim returns the identities that were new; a second copy within the batch is not
(the rows are deduplicated before, the first copy's position kept). The kept answers
return the number of inbox rows changed, for the caller's check.

A consumer of commands writes each row once instead (services/runtime/inbox.py): the
look-up (:func:`recorded`, the identities found, each by the primary key) and the record
(:func:`record_new`, the rows with their answers, ``ON CONFLICT DO NOTHING``; it returns
how many were inserted, and fewer than given means another transaction recorded some).
The claim and the kept answers remain for consumers of events and for a command
answered after its handler failed for good.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.bulk import pg_cast_type

# where a delivery was read: (source, event_id, topic, partition, offset)
ClaimRow = tuple[str, str, str, int, int]

_POSITION = ("source", "event_id", "topic", "partition", "offset")

# rows of one SQLite claim statement: 7 parameters each, within SQLite's limit of 32 766
# parameters a statement (999 before SQLite 3.32)
_SQLITE_ROWS = 500 if sqlite3.sqlite_version_info >= (3, 32) else 999 // 7


@dataclass(frozen=True, slots=True)
class _Plan:
    claim: str  # on SQLite with a VALUES_MARK for the rows
    answer: str
    recorded: str  # on SQLite with a VALUES_MARK for the identities
    record: str
    processed_at: Callable[[Any], Any] | None
    answer_value: Callable[[Any], Any] | None
    claims: dict[int, str]  # SQLite: the claim's text for a number of rows
    lookups: dict[int, str]  # SQLite: the look-up's text for a number of identities

    def claim_of(self, rows: int) -> str:
        return _with_values(self.claim, self.claims, rows, 7)

    def recorded_of(self, identities: int) -> str:
        return _with_values(self.recorded, self.lookups, identities, 2)


def _with_values(text: str, made: dict[int, str], rows: int, width: int) -> str:
    """``text`` with its VALUES_MARK as ``rows`` rows of ``width`` parameters (SQLite),
    made once per number of rows."""
    known = made.get(rows)
    if known is None:
        row = "(" + ", ".join(["?"] * width) + ")"
        known = made[rows] = text.replace(VALUES_MARK, "VALUES " + ", ".join([row] * rows))
    return known


VALUES_MARK = "VALUES (…)"


_PLANS: dict[tuple[str, Table], _Plan] = {}


def _plan(dialect: Any, inbox: Table) -> _Plan:
    key = (dialect.name, inbox)
    known = _PLANS.get(key)
    if known is not None:
        return known
    for column in ("consumer", *_POSITION):  # passed as they are: text and integers
        if inbox.c[column].type._cached_bind_processor(dialect) is not None:
            raise ValueError(f"{inbox.name}.{column}: a type with a bind processor")
    q = dialect.identifier_preparer.quote
    table = dialect.identifier_preparer.format_table(inbox)
    columns = ("consumer", *_POSITION, "processed_at")
    into = f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) "
    identity = f"ON CONFLICT ({q('consumer')}, {q('source')}, {q('event_id')}) DO NOTHING "
    returning = f"RETURNING {q('source')}, {q('event_id')}"
    if dialect.name == "postgresql":

        def sql_type(column: str) -> str:
            return pg_cast_type(inbox.c[column].type, dialect)

        arrays = ", ".join(f"${i}::{sql_type(c)}[]" for i, c in enumerate(_POSITION, start=2))
        fields = ", ".join(q(c) for c in _POSITION)
        claim = (
            f"{into}SELECT $1::{sql_type('consumer')}, {fields}, "
            f"${len(_POSITION) + 2}::{sql_type('processed_at')} "
            f"FROM unnest({arrays}) AS u ({fields}) {identity}{returning}"
        )
        # Each row found by the primary key, whatever the planner believes of the table:
        # the LIMIT keeps the lateral lookup a per-row index scan (a plain join over
        # unnest was planned, on a table without statistics yet, a new database or a
        # fast-growing inbox, as a hash join over every row of the consumer: a batch's
        # answers grew to a second at 1 000 commands/s, docs/booking-throughput.md); the
        # row is then updated by its ctid, and the statement's count is exact.
        answer = (
            f"UPDATE {table} SET {q('answer')} = CAST(f.{q('answer')} AS "
            f"{sql_type('answer')}) FROM (SELECT i.ctid AS row_id, u.{q('answer')} "
            f"FROM unnest($2::{sql_type('source')}[], $3::{sql_type('event_id')}[], "
            f"$4::text[]) AS u ({q('source')}, {q('event_id')}, {q('answer')}) "
            f"CROSS JOIN LATERAL (SELECT {table}.ctid FROM {table} WHERE "
            f"{table}.{q('consumer')} = $1::{sql_type('consumer')} AND "
            f"{table}.{q('source')} = u.{q('source')} AND "
            f"{table}.{q('event_id')} = u.{q('event_id')} LIMIT 1) AS i) AS f "
            f"WHERE {table}.ctid = f.row_id"
        )
        # the rows with their answers (NULL: none), the time once for all
        record = (
            f"{into[:-2]}, {q('answer')}) SELECT $1::{sql_type('consumer')}, {fields}, "
            f"${len(_POSITION) + 2}::{sql_type('processed_at')}, "
            f"CAST(u.{q('answer')} AS {sql_type('answer')}) "
            f"FROM unnest({arrays}, ${len(_POSITION) + 3}::text[]) "
            f"AS u ({fields}, {q('answer')}) {identity}"
        )
        # the same per-row index look-up (LIMIT 1), for identities alone
        recorded = (
            f"SELECT u.{q('source')}, u.{q('event_id')} "
            f"FROM unnest($2::{sql_type('source')}[], $3::{sql_type('event_id')}[]) "
            f"AS u ({q('source')}, {q('event_id')}) "
            f"CROSS JOIN LATERAL (SELECT 1 FROM {table} WHERE "
            f"{table}.{q('consumer')} = $1::{sql_type('consumer')} AND "
            f"{table}.{q('source')} = u.{q('source')} AND "
            f"{table}.{q('event_id')} = u.{q('event_id')} LIMIT 1) AS i"
        )
    elif dialect.name == "sqlite":
        claim = f"{into}{VALUES_MARK} {identity}{returning}"
        answer = (
            f"UPDATE {table} SET {q('answer')} = ? "
            f"WHERE {q('consumer')} = ? AND {q('source')} = ? AND {q('event_id')} = ?"
        )
        record = f"{into[:-2]}, {q('answer')}) VALUES ({', '.join(['?'] * 8)}) {identity}"
        # the identities' VALUES first (CROSS JOIN keeps that order), each then found by
        # the primary key; a row value IN (VALUES …) was planned as a scan of every row
        # of the consumer
        recorded = (
            f"SELECT u.column1, u.column2 FROM ({VALUES_MARK}) AS u CROSS JOIN {table} AS i "
            f"WHERE i.{q('consumer')} = ? AND i.{q('source')} = u.column1 "
            f"AND i.{q('event_id')} = u.column2"
        )
    else:  # pragma: no cover - the two databases microhub runs on
        raise ValueError(f"no batch inbox statements for {dialect.name}")
    plan = _PLANS[key] = _Plan(
        claim,
        answer,
        recorded,
        record,
        inbox.c.processed_at.type._cached_bind_processor(dialect),
        inbox.c.answer.type._cached_bind_processor(dialect),
        {},
        {},
    )
    return plan


async def _prepared(session: AsyncSession, inbox: Table, now: datetime) -> tuple[Any, _Plan, Any]:
    """The session's connection, the inbox's statements on its database, and ``now`` as
    the driver takes it."""
    connection = await session.connection()
    plan = _plan(connection.dialect, inbox)
    return connection, plan, now if plan.processed_at is None else plan.processed_at(now)


def _pg_positions(consumer: str, rows: Sequence[tuple[Any, ...]], at: Any) -> tuple[Any, ...]:
    """PostgreSQL's parameters of rows that start with a position (:data:`ClaimRow`):
    $1 the consumer, $2 to $6 an array per field of the position, $7 the time."""
    columns = list(zip(*rows, strict=True))  # a RecordRow's answer: left out below
    return (consumer, *(list(column) for column in columns[: len(_POSITION)]), at)


async def claim_new(
    session: AsyncSession, inbox: Table, *, consumer: str, rows: Iterable[ClaimRow], now: datetime
) -> set[tuple[str, str]]:
    """Insert the rows not recorded yet for ``consumer`` (each identity once: the first
    row of it is kept), all with ``now`` as their time; returns the (source, event_id)
    of those that were new."""
    unique: dict[tuple[str, str], ClaimRow] = {}
    for row in rows:
        unique.setdefault((row[0], row[1]), row)
    if not unique:
        return set()
    connection, plan, at = await _prepared(session, inbox, now)
    if connection.dialect.name == "postgresql":
        parameters = _pg_positions(consumer, list(unique.values()), at)
        # typed as rows of no columns (the text is not SQLAlchemy's): (source, event_id)
        result: Any = await connection.exec_driver_sql(plan.claim, parameters)
        return {(source, event_id) for source, event_id in result}
    new: set[tuple[str, str]] = set()
    pending = list(unique.values())
    for start in range(0, len(pending), _SQLITE_ROWS):
        chunk = pending[start : start + _SQLITE_ROWS]
        flat = [v for row in chunk for v in (consumer, *row, at)]
        result = await connection.exec_driver_sql(plan.claim_of(len(chunk)), tuple(flat))
        new.update((source, event_id) for source, event_id in result)
    return new


async def keep_answers(
    session: AsyncSession,
    inbox: Table,
    *,
    consumer: str,
    answers: dict[tuple[str, str], list[dict[str, Any]]],
) -> int:
    """Set the answer of each (source, event_id)'s row of ``consumer``; returns how many
    rows were changed (fewer than the answers: some had no inbox row)."""
    if not answers:
        return 0
    connection = await session.connection()
    dialect = connection.dialect
    plan = _plan(dialect, inbox)
    encode = plan.answer_value or (lambda value: value)
    result: Any
    if dialect.name == "postgresql":
        keys = list(answers)
        result = await connection.exec_driver_sql(
            plan.answer,
            (
                consumer,
                [source for source, _ in keys],
                [event_id for _, event_id in keys],
                [encode(answers[k]) for k in keys],
            ),
        )
    else:
        result = await connection.exec_driver_sql(
            plan.answer,
            [
                (encode(answer), consumer, source, event_id)
                for (source, event_id), answer in answers.items()
            ],
        )
    return int(result.rowcount)


async def recorded(
    session: AsyncSession, inbox: Table, *, consumer: str, identities: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of the (source, event_id) identities ``consumer`` has recorded already: one
    statement (on SQLite one per 500 identities), each found by the primary key."""
    unique = list(dict.fromkeys(identities))
    if not unique:
        return set()
    connection = await session.connection()
    dialect = connection.dialect
    plan = _plan(dialect, inbox)
    result: Any
    if dialect.name == "postgresql":
        sources, event_ids = zip(*unique, strict=True)
        parameters = (consumer, list(sources), list(event_ids))
        result = await connection.exec_driver_sql(plan.recorded, parameters)
        return {(source, event_id) for source, event_id in result}
    found: set[tuple[str, str]] = set()
    for start in range(0, len(unique), _SQLITE_ROWS):
        chunk = unique[start : start + _SQLITE_ROWS]
        flat = (*(v for identity in chunk for v in identity), consumer)
        result = await connection.exec_driver_sql(plan.recorded_of(len(chunk)), flat)
        found.update((source, event_id) for source, event_id in result)
    return found


# where a delivery was read and the answer it was given (None: none), as recorded
RecordRow = tuple[str, str, str, int, int, list[dict[str, Any]] | None]


async def record_new(
    session: AsyncSession, inbox: Table, *, consumer: str, rows: list[RecordRow], now: datetime
) -> int:
    """Insert the rows of ``consumer`` (each identity once), with ``now`` as their time
    and their answers (SQL NULL for None), skipping an identity recorded already;
    returns how many were inserted."""
    if not rows:
        return 0
    connection, plan, at = await _prepared(session, inbox, now)
    encode = plan.answer_value or (lambda value: value)
    result: Any
    if connection.dialect.name == "postgresql":
        answers = [None if row[5] is None else encode(row[5]) for row in rows]
        parameters = (*_pg_positions(consumer, rows, at), answers)
        result = await connection.exec_driver_sql(plan.record, parameters)
    else:  # sqlite3's executemany sums the rows each execution inserted
        result = await connection.exec_driver_sql(
            plan.record,
            [
                (consumer, s, e, t, p, o, at, None if a is None else encode(a))
                for s, e, t, p, o, a in rows
            ],
        )
    return int(result.rowcount)
