"""A batch of commands writes each command's inbox row once, with its answer (issue 12):
looked up first, recorded after the decisions. What that must keep, on both databases:
a command is answered exactly once even when another owner of its partition (a
rebalance) applies it between the look-up and the record; rows are written as the claim
wrote them; a command with no answer keeps SQL NULL (what the purge's index reads)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bench.booking_decide import Record
from contracts.booking import BookingRequested
from contracts.envelope import encode, new_event
from services.booking import store
from services.booking.service import BookingService
from services.runtime import inbox
from services.runtime.consumer import EventConsumer
from services.runtime.db import make_engine
from services.runtime.settings import Settings
from tests.support.carrier import consignment
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue
from tests.support.inbox import delivery

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)  # Tuesday 09:00 Berlin, on the hourly grid
ANSWER = [{"type": "microhub.booking.confirmed.v1", "key": "h", "data": {"n": 10**15}}]


def _booking(database_url: str, tmp_path: Path, name: str) -> BookingService:
    """One booking process (an owner of the commands' partitions) on the shared database."""
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never contacted: no broker is started
        data_dir=tmp_path / name,
        hubs_file=write_catalogue(tmp_path / "hubs.yaml", hub_config(docks_per_slot=5)),
        max_clock_skew_seconds=0,
    )
    return BookingService(settings, settings.bootstrap_list(), database_url=database_url)


@pytest.fixture
async def owners(database_url: str, tmp_path: Path) -> AsyncIterator[list[BookingService]]:
    services = [_booking(database_url, tmp_path, name) for name in ("a", "b")]
    await services[0].migrate()
    for service in services:
        await service.load_hubs(service.settings.hubs_file)
    yield services
    for service in services:
        await service.engine.dispose()


def commands_consumer(service: BookingService) -> EventConsumer:
    consumer = service.consumers[0]
    assert consumer.answers is not None
    consumer.after_commit = lambda: None  # no relay: the outbox is read below
    return consumer


def requests(topic: str, references: list[str]) -> list[Record]:
    records = []
    for offset, reference in enumerate(references):
        payload = BookingRequested(
            carrier_id="acme",
            carrier_reference=reference,
            hub_id=TEST_HUB,
            slot_start=SLOT,
            consignment=consignment(),
        )
        event = new_event(payload, source="carrier/acme", subject=TEST_HUB, time=NOW)
        stamp = int(NOW.timestamp() * 1000)
        records.append(Record(encode(event), TEST_HUB.encode(), topic, 0, offset, stamp))
    return records


async def answers_by_command(service: BookingService) -> dict[str, list[str]]:
    async with service.sessions() as session:
        rows = await session.execute(select(store.outbox.c.payload).order_by(store.outbox.c.id))
        events = [json.loads(payload) for payload in rows.scalars()]
    answered: dict[str, list[str]] = {}
    for event in events:
        if "causationid" in event:
            answered.setdefault(event["causationid"], []).append(event["type"])
    return answered


async def test_a_command_another_owner_applies_meanwhile_is_answered_once(
    owners: list[BookingService],
) -> None:
    """Owner A looks its batch up (nothing recorded), then owner B, which the group gave
    the partition meanwhile, applies one of its commands and commits. A's decision of
    that command would answer it a second time: A's record finds the row taken, A's
    batch is undone, and redone one by one, where that command is known as applied."""
    a, b = (commands_consumer(service) for service in owners)
    records = requests(a.topic, ["r0", "r1", "r2"])
    ids = [json.loads(r.value)["id"] for r in records]
    decide = a.batch_handler
    assert decide is not None
    raced: list[int] = []

    async def another_owner_first(uow: Any, fresh: list[Any]) -> None:
        if not raced:  # A's batch: all three found new, none recorded yet
            raced.append(len(fresh))
            await b.process(records[1])
        await decide(uow, fresh)

    a.batch_handler = another_owner_first
    await a.process_batch(records)

    assert raced == [3]
    answered = await answers_by_command(owners[0])
    assert answered == {i: ["microhub.booking.confirmed.v1"] for i in ids}
    async with owners[0].sessions() as session:
        bookings = (await session.execute(select(store.bookings.c.carrier_reference))).scalars()
        assert sorted(bookings) == ["r0", "r1", "r2"]
        rows = await session.execute(
            select(store.inbox.c.event_id, store.inbox.c.offset, store.inbox.c.answer)
        )
        kept = {event_id: (offset, answer) for event_id, offset, answer in rows}
    assert {i: offset for i, (offset, _) in kept.items()} == {i: n for n, i in enumerate(ids)}
    assert all(answer[0]["type"] == "microhub.booking.confirmed.v1" for _, answer in kept.values())
    assert a.stats.processed == 2 and b.stats.processed == 1


async def test_record_new_refuses_an_identity_recorded_meanwhile_and_keeps_nothing(
    booking_sessions,
) -> None:
    """Two transactions find the same command new; the first records it; the second's
    record raises InboxRace (transient: redone), and what it wrote is rolled back."""
    batch = [delivery("carrier/a", f"e{i}", i) for i in range(3)]
    async with booking_sessions() as first, first.begin():
        new = await inbox.unrecorded(first, store.inbox, consumer="c", deliveries=batch)
        assert new == {("carrier/a", f"e{i}") for i in range(3)}
        await inbox.record_new(
            first,
            store.inbox,
            consumer="c",
            deliveries=batch[1:2],
            answers={("carrier/a", "e1"): ANSWER},
        )
    with pytest.raises(inbox.InboxRace, match="1 of 3 commands were recorded"):
        async with booking_sessions() as second, second.begin():
            await inbox.record_new(
                second,
                store.inbox,
                consumer="c",
                deliveries=batch,
                answers={(d.event.source, d.event.id): [] for d in batch},
            )
    async with booking_sessions() as session:
        rows = await session.execute(select(store.inbox.c.event_id, store.inbox.c.answer))
        assert dict(rows.all()) == {"e1": ANSWER}


async def test_looked_up_and_recorded_rows_are_what_the_claim_wrote(booking_sessions) -> None:
    """The same identities, positions and time as a claim followed by kept answers; an
    unanswered command's answer is SQL NULL, not JSON null; the same id from another
    source is another command; more identities than one SQLite statement takes."""
    seen = [delivery("carrier/a", "seen", 1)]
    batch = [
        delivery("carrier/a", "1", 10, partition=2),
        delivery("carrier/b", "1", 11, partition=2),
        delivery('carrier/"q"', "ünï ✓ 'x'", 12, partition=3),
        *(delivery("carrier/c", f"n{i}", 100 + i, partition=4) for i in range(600)),
    ]
    async with booking_sessions() as session, session.begin():
        for consumer in ("claimed", "recorded"):
            await inbox.claim_all(session, store.inbox, consumer=consumer, deliveries=seen)
        await inbox.claim_all(session, store.inbox, consumer="claimed", deliveries=batch)
        await inbox.record_answers(
            session, store.inbox, consumer="claimed", answers=[("carrier/a", "1", ANSWER)]
        )
        new = await inbox.unrecorded(
            session, store.inbox, consumer="recorded", deliveries=[*seen, *batch]
        )
        assert new == {(d.event.source, d.event.id) for d in batch}
        await inbox.record_new(
            session,
            store.inbox,
            consumer="recorded",
            deliveries=batch,
            answers={("carrier/a", "1"): ANSWER},
        )
        again = await inbox.unrecorded(
            session, store.inbox, consumer="recorded", deliveries=[*seen, *batch]
        )
        assert again == set()
    stored = {}
    async with booking_sessions() as session:
        for consumer in ("claimed", "recorded"):
            rows = await session.execute(
                text(
                    'SELECT source, event_id, topic, "partition", "offset", answer IS NULL, '
                    "CAST(answer AS TEXT) FROM inbox WHERE consumer = :c AND event_id <> 'seen'"
                ),
                {"c": consumer},
            )
            stored[consumer] = {(r[0], r[1]): tuple(r[2:]) for r in rows}
    assert stored["recorded"] == stored["claimed"]
    assert stored["recorded"]["carrier/b", "1"][3] in (True, 1)  # SQL NULL
    assert json.loads(stored["recorded"]["carrier/a", "1"][4]) == ANSWER
    assert len(stored["recorded"]) == 603


async def test_the_look_up_finds_each_identity_by_the_key(database_url: str) -> None:
    """Planned on an inbox without statistics (a new database; with the generic plan a
    prepared statement settles on, on PostgreSQL), each identity is still found by the
    primary key: never a scan of every row of the consumer, which would grow with the
    inbox. SQLite had planned ``(source, event_id) IN (VALUES …)`` as such a scan."""
    from services.runtime.inbox_batch import _plan

    engine = make_engine(database_url)
    try:
        await BookingService.spec.migrate(engine)
        async with engine.connect() as conn:
            plan_of = _plan(conn.dialect, store.inbox)
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            if conn.dialect.name == "postgresql":
                await driver.execute("SET plan_cache_mode = force_generic_plan")
                rows = await driver.fetch(
                    f"EXPLAIN {plan_of.recorded}", "c", ["carrier/x"] * 30, ["e"] * 30
                )
                plan = "\n".join(row[0] for row in rows)
                assert "Scan using pk_inbox on inbox" in plan, plan
                assert "Seq Scan on inbox" not in plan and "Hash" not in plan, plan
            else:
                cursor = await driver.execute(
                    f"EXPLAIN QUERY PLAN {plan_of.recorded_of(3)}", ("s", "e") * 3 + ("c",)
                )
                plan = "\n".join(str(row[-1]) for row in await cursor.fetchall())
                assert "(consumer=? AND source=? AND event_id=?)" in plan, plan
    finally:
        await engine.dispose()
