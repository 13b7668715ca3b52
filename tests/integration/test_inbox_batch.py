"""A batch's inbox claim and kept answers by the driver (services/runtime/inbox_batch.py,
issue 12) return and store what SQLAlchemy's own statements did, on both databases: the
identities that were new (a second copy within the batch and one seen before are not),
the rows as written, and an answer without its inbox row refused."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import DBAPIError

from services.booking import store
from services.booking.service import BookingService
from services.runtime import inbox
from services.runtime.db import dialect_insert, make_engine, make_sessionmaker
from services.runtime.inbox_batch import claim_new
from tests.support.inbox import delivery as _delivery

# another offset than UTC: stored as the same instant
AT = datetime(2026, 12, 1, 9, 30, 15, 5, tzinfo=timezone(timedelta(hours=-3)))
ANSWER = [
    {"type": "microhub.booking.confirmed.v1", "key": "ber-westhafen",
     "data": {"booking_id": "b-1", "note": 'Grüße "x" \\ \'y\'', "volume_m3": 0.35, "n": 10**15}},
]  # fmt: skip


async def _reference_claim(session, consumer: str, deliveries, now: datetime) -> set:
    """The claim as it was: SQLAlchemy's INSERT … ON CONFLICT DO NOTHING RETURNING."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for d in deliveries:
        rows.setdefault(
            (d.event.source, d.event.id),
            {"consumer": consumer, "source": d.event.source, "event_id": d.event.id,
             "topic": d.topic, "partition": d.partition, "offset": d.offset, "processed_at": now},
        )  # fmt: skip
    statement = (
        dialect_insert(session)(store.inbox)
        .on_conflict_do_nothing(index_elements=["consumer", "source", "event_id"])
        .returning(store.inbox.c.source, store.inbox.c.event_id)
    )
    result = await session.execute(statement, list(rows.values()))
    return {(r.source, r.event_id) for r in result}


async def _stored(session, consumer: str) -> dict[tuple[str, str], tuple]:
    """Each row of ``consumer`` as the database holds it (timestamps and answers as text:
    what SQLite compares and what a reader parses)."""
    rows = await session.execute(
        text(
            'SELECT source, event_id, topic, "partition", "offset", CAST(processed_at AS TEXT),'
            " CAST(answer AS TEXT), answer IS NULL FROM inbox WHERE consumer = :c"
        ),
        {"c": consumer},
    )
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


async def test_a_batch_claims_what_the_old_statement_claimed(booking_sessions) -> None:
    seen = [_delivery("carrier/a", "seen", 1)]
    batch = [
        _delivery("carrier/a", "1", 10),
        _delivery("carrier/a", "1", 11, partition=2),  # a second copy in the batch
        _delivery("carrier/b", "1", 12),  # the same id from another source: another event
        _delivery("carrier/a", "seen", 13),  # seen before
        _delivery('carrier/"quoted"', "ünïcode ✓ 'x'", 14),
    ]
    async with booking_sessions() as session, session.begin():
        assert await _reference_claim(session, "reference", seen, AT) == {("carrier/a", "seen")}
        assert await inbox.claim_all(session, store.inbox, consumer="driver", deliveries=seen) == {
            ("carrier/a", "seen")
        }
        expected = await _reference_claim(session, "reference", batch, AT)
        rows = [(d.event.source, d.event.id, d.topic, d.partition, d.offset) for d in batch]
        got = await claim_new(session, store.inbox, consumer="driver", rows=rows, now=AT)
        again = await claim_new(session, store.inbox, consumer="driver", rows=rows, now=AT)
    assert got == expected == {
        ("carrier/a", "1"), ("carrier/b", "1"), ('carrier/"quoted"', "ünïcode ✓ 'x'")
    }  # fmt: skip
    assert again == set()
    async with booking_sessions() as session:
        driver, reference = await _stored(session, "driver"), await _stored(session, "reference")
    # the first copy's position, the time as SQLAlchemy wrote it (but seen's own time)
    assert {k: v for k, v in driver.items() if k[1] != "seen"} == {
        k: v for k, v in reference.items() if k[1] != "seen"
    }
    assert driver["carrier/a", "1"][:3] == ("booking.commands", 0, 10)
    assert set(driver) == set(reference)


async def test_kept_answers_are_stored_as_sqlalchemy_stored_them(booking_sessions) -> None:
    batch = [_delivery("carrier/a", str(i), i) for i in range(3)]
    async with booking_sessions() as session, session.begin():
        for consumer in ("driver", "reference"):
            await inbox.claim_all(session, store.inbox, consumer=consumer, deliveries=batch)
        await inbox.record_answers(
            session, store.inbox, consumer="driver",
            answers=[("carrier/a", "0", ANSWER), ("carrier/a", "1", [])],
        )  # fmt: skip
        await session.execute(
            update(store.inbox)
            .where(
                store.inbox.c.consumer == "reference",
                store.inbox.c.source == bindparam("b_source"),
                store.inbox.c.event_id == bindparam("b_event_id"),
            )
            .values(answer=bindparam("b_answer")),
            [
                {"b_source": "carrier/a", "b_event_id": "0", "b_answer": ANSWER},
                {"b_source": "carrier/a", "b_event_id": "1", "b_answer": []},
            ],
        )
    async with booking_sessions() as session:
        driver = await _stored(session, "driver")
        reference = await _stored(session, "reference")
        kept = await session.execute(
            select(store.inbox.c.event_id, store.inbox.c.answer).where(
                store.inbox.c.consumer == "driver"
            )
        )
        answers = dict(kept.all())
    assert [v[4:] for v in driver.values()] == [v[4:] for v in reference.values()]
    assert answers == {"0": ANSWER, "1": [], "2": None}


async def test_an_answer_without_its_inbox_row_is_refused(booking_sessions) -> None:
    async with booking_sessions() as session:
        async with session.begin():
            await inbox.claim_all(
                session, store.inbox, consumer="c", deliveries=[_delivery("carrier/a", "1", 1)]
            )
        with pytest.raises(RuntimeError, match="2 answers but 1 inbox rows"):
            async with session.begin():
                await inbox.record_answers(
                    session, store.inbox, consumer="c",
                    answers=[("carrier/a", "1", ANSWER), ("carrier/a", "missing", ANSWER)],
                )  # fmt: skip
        with pytest.raises(RuntimeError, match="1 answers but 0 inbox rows"):
            async with session.begin():
                await inbox.record_answers(
                    session, store.inbox, consumer="other", answers=[("carrier/a", "1", ANSWER)]
                )
    async with booking_sessions() as session:  # the refused transactions kept nothing
        assert bool((await _stored(session, "c"))["carrier/a", "1"][5])  # answer IS NULL


async def test_an_id_past_its_column_is_not_cut(booking_sessions, database_url: str) -> None:
    """PostgreSQL refuses it (as the INSERT always did); SQLite, which has no lengths,
    keeps it whole. Either way never claimed under a shorter id."""
    long_id = "x" * 201
    async with booking_sessions() as session:
        if database_url.startswith("postgresql"):
            with pytest.raises(DBAPIError, match="too long"):
                async with session.begin():
                    await inbox.claim_all(
                        session, store.inbox, consumer="c",
                        deliveries=[_delivery("carrier/a", long_id, 1)],
                    )  # fmt: skip
            return
        async with session.begin():
            got = await inbox.claim_all(
                session, store.inbox, consumer="c", deliveries=[_delivery("carrier/a", long_id, 1)]
            )
        assert got == {("carrier/a", long_id)}
        assert set(await _stored(session, "c")) == {("carrier/a", long_id)}


# CloudEvents ids and sources as a carrier may send them: quotes, backslashes, any
# script, up to the contract's lengths; NUL on SQLite (PostgreSQL's text cannot hold it,
# with either statement). Not lone surrogates (not UTF-8).
def _batches(nul: bool) -> st.SearchStrategy[list[list[tuple[str, str]]]]:
    chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="" if nul else "\x00")
    ids = st.one_of(
        st.text(chars, min_size=1, max_size=12),
        st.text(chars, min_size=190, max_size=200),
        st.sampled_from(["'", '"', "\\", "a'b\"c", "🚚", "ß", "Ǆ", "x" * 200]),
    )
    sources = st.sampled_from(["carrier/a", "carrier/'b'", 'carrier/"c"', "ü/ñ/✓", "s" * 500])
    return st.lists(
        st.lists(st.tuples(sources, ids), min_size=1, max_size=30), min_size=1, max_size=3
    )


def test_any_ids_are_claimed_once_property(database_url: str) -> None:
    """Whatever the ids, and however often they come within and across batches, a batch's
    claim returns exactly the identities not seen before, and the inbox holds each once,
    with its first copy's position."""
    runner = asyncio.Runner()
    engine = make_engine(database_url)
    booking_sessions = make_sessionmaker(engine)
    runner.run(BookingService.spec.migrate(engine))
    examples = iter(range(10**6))

    async def run(batches_: list[list[tuple[str, str]]]) -> None:
        consumer = f"c{next(examples)}"
        seen: dict[tuple[str, str], int] = {}
        offset = 0
        for batch in batches_:
            deliveries = []
            for source, event_id in batch:
                offset += 1
                deliveries.append(_delivery(source, event_id, offset))
            expected = {(s, e) for s, e in batch} - set(seen)
            for d in deliveries:
                seen.setdefault((d.event.source, d.event.id), d.offset)
            async with booking_sessions() as session, session.begin():
                got = await inbox.claim_all(
                    session, store.inbox, consumer=consumer, deliveries=deliveries
                )
            assert got == expected
        async with booking_sessions() as session:
            stored = await _stored(session, consumer)
        assert {k: v[2] for k, v in stored.items()} == seen

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(batches_=_batches(nul=database_url.startswith("sqlite")))
    def check(batches_: list[list[tuple[str, str]]]) -> None:
        runner.run(run(batches_))

    try:
        check()
    finally:
        runner.run(engine.dispose())
        runner.close()


async def test_a_claim_past_one_sqlite_statement_claims_every_row(booking_sessions) -> None:
    """More rows than one SQLite statement takes (500): claimed in parts, all of them."""
    batch = [_delivery("carrier/a", f"e{i}", i) for i in range(1203)]
    async with booking_sessions() as session, session.begin():
        first = await inbox.claim_all(session, store.inbox, consumer="c", deliveries=batch[:700])
        got = await inbox.claim_all(session, store.inbox, consumer="c", deliveries=batch)
    assert len(first) == 700
    assert got == {("carrier/a", f"e{i}") for i in range(700, 1203)}
    async with booking_sessions() as session:
        assert len(await _stored(session, "c")) == 1203


async def test_kept_answers_find_their_rows_by_the_key_on_a_table_without_statistics(
    postgres_url: str,
) -> None:
    """A new database's inbox has no statistics until autovacuum gathers them: planned
    then as a join over ``unnest``, the kept answers read every row of the consumer (a
    hash join), and a batch's answers grew to a second at 1 000 commands/s. Planned with
    the generic plan a prepared statement settles on, each row must still be found by the
    primary key."""
    from services.runtime.inbox_batch import _plan

    engine = make_engine(postgres_url)
    try:
        await BookingService.spec.migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO inbox (consumer, source, event_id, topic, partition, "
                    "\"offset\", processed_at) SELECT 'c', 'carrier/x', 'e-' || g, 't', "
                    "0, g, now() FROM generate_series(1, 20000) AS g"
                )
            )
        async with engine.connect() as conn:
            answer = _plan(conn.dialect, store.inbox).answer
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            await driver.execute("SET plan_cache_mode = force_generic_plan")
            ids = [f"e-{i}" for i in range(100, 130)]
            plan = "\n".join(
                row[0]
                for row in await driver.fetch(
                    f"EXPLAIN {answer}", "c", ["carrier/x"] * 30, ids, ['[{"a": 1}]'] * 30
                )
            )
    finally:
        await engine.dispose()
    assert "Index Scan using pk_inbox" in plan, plan
    assert "Hash Join" not in plan and "Bitmap Heap Scan on inbox" not in plan, plan
