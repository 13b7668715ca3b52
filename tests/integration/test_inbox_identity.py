"""The inbox knows an event by its CloudEvents identity, source + id (issue 12), on both
databases, for every service; the migration keeps what was recorded before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData, Table, insert, select

from services.app.registry import service_class, service_names
from services.runtime import inbox, migrations
from services.runtime.db import make_engine, make_sessionmaker

# each service's revision before the inbox knew sources
BEFORE = {"booking": "20261121_0001", "dispatch": "20261130_0003", "reporting": "20261130_r003"}


def _store(service: str):
    return __import__(f"services.{service}.store", fromlist=["inbox"])


@pytest.mark.parametrize("service", service_names())
async def test_the_same_id_from_two_sources_is_two_events(service: str, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await service_class(service).spec.migrate(engine)
        table = _store(service).inbox
        sessions = make_sessionmaker(engine)
        where = dict(topic="t", partition=0, offset=1)
        async with sessions() as session, session.begin():
            first = await inbox.claim(
                session, table, consumer="c", source="carrier/a", event_id="1", **where
            )
            other = await inbox.claim(
                session, table, consumer="c", source="carrier/b", event_id="1", **where
            )
            again = await inbox.claim(
                session, table, consumer="c", source="carrier/a", event_id="1", **where
            )
            resent = await inbox.claim(
                session, table, consumer="c", source="carrier/a", event_id="1",
                topic="t", partition=0, offset=7,
            )  # fmt: skip
            await inbox.seen_at(
                session, table, consumer="c", source="carrier/a", event_id="1",
                topic="t", partition=0, offset=7,
            )  # fmt: skip
            earlier = await inbox.claim(
                session, table, consumer="c", source="carrier/a", event_id="1",
                topic="t", partition=0, offset=5,
            )  # fmt: skip
        assert first.fresh and other.fresh
        assert not again.fresh and again.redelivered
        assert not resent.fresh and not resent.redelivered
        assert not earlier.fresh and earlier.redelivered  # offsets only grow
    finally:
        await engine.dispose()


# the services whose inbox predates the source column (the gateway's never lacked it)
@pytest.mark.parametrize("service", sorted(BEFORE))
async def test_the_migration_keeps_the_events_recorded_before(
    service: str, database_url: str
) -> None:
    """Rows from before have no source: they keep theirs as '' (unknown), so the
    primary key holds; a redelivery of such an event is deduplicated by the service's own
    idempotency (booking: the stored outcome; dispatch and reporting: keyed by booking)."""
    engine = make_engine(database_url)
    spec = service_class(service).spec
    try:
        await migrations.upgrade(engine, service, spec.migrations, BEFORE[service])
        async with engine.begin() as connection:
            legacy = await connection.run_sync(
                lambda sync: Table("inbox", MetaData(), autoload_with=sync)
            )
            assert "source" not in legacy.c
            await connection.execute(
                insert(legacy),
                [
                    {
                        "consumer": "c", "event_id": "1", "topic": "t", "partition": 0,
                        "offset": 5, "processed_at": datetime(2026, 11, 1, tzinfo=UTC),
                    }
                ],
            )  # fmt: skip
        await spec.migrate(engine)
        table = _store(service).inbox
        sessions = make_sessionmaker(engine)
        async with sessions() as session:
            rows = (await session.execute(select(table.c.source, table.c.event_id))).all()
        assert [tuple(r) for r in rows] == [("", "1")]
        async with sessions() as session, session.begin():
            claimed = await inbox.claim(
                session, table, consumer="c", source="carrier/a", event_id="1",
                topic="t", partition=0, offset=9,
            )  # fmt: skip
        assert claimed.fresh
    finally:
        await engine.dispose()
