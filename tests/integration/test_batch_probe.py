"""The batch's probe (services/booking/probe.py), on PostgreSQL and SQLite: it never says
"none" where the read it saves would have found rows, and a batch at quiet hubs makes
that one statement instead of the four reads."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, insert, select

from contracts.booking import BookingRequested
from services.booking import store
from services.booking.closures import Closures
from services.booking.domain import HubConfig
from services.booking.handlers import BookingHandlers
from services.booking.ledger import HubCatalogue
from services.booking.probe import Probe
from services.booking.series import ACTIVE, CANCELLED, Standing
from services.booking.service import BookingService
from services.booking.waiting_list import WaitingList
from services.runtime.db import make_engine, make_sessionmaker
from tests.support.booking import command_delivery, commands_consumer
from tests.support.carrier import consignment
from tests.support.hubs import hub_config

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)
HUBS = ("hub-a", "hub-b", "hub-c")
CONFIGS = {h: HubConfig.model_validate(hub_config(id=h)) for h in HUBS}

closures = st.lists(
    st.tuples(st.sampled_from(HUBS), st.integers(-24 * 5, 24 * 5), st.booleans()), max_size=4
)  # (hub, its end in hours from NOW, lifted)
waiting = st.lists(st.sampled_from(HUBS), max_size=3)
series = st.lists(
    st.tuples(
        st.sampled_from(HUBS),
        st.sampled_from([ACTIVE, CANCELLED]),
        st.one_of(st.none(), st.integers(-24, 24 * 60)),  # next occurrence, days from NOW
    ),
    max_size=3,
)
batches = st.sets(st.sampled_from(HUBS), min_size=1)  # the hubs a batch's commands are at


def _rows(closed: list, queued: list[str], standing: list) -> dict[Any, list[dict[str, Any]]]:
    hour = timedelta(hours=1)
    return {
        store.hub_closures: [
            dict(
                hub_id=hub, id=f"c{i}", starts_at=NOW + (end - 48) * hour,
                ends_at=NOW + end * hour, reason="works", declared={"n": i},
                lifted={"by": "ops"} if lifted else None,
            )
            for i, (hub, end, lifted) in enumerate(closed)
        ],
        store.waiting_list: [
            dict(
                booking_id=f"w{i}", hub_id=hub, slot_start=NOW + 30 * hour, volume_l=100,
                queued_at=NOW, seq=i + 1, offered_until=None, request={},
            )
            for i, hub in enumerate(queued)
        ],
        store.series: [
            dict(
                id=f"s{i}", carrier_id="acme", carrier_reference=f"s{i}", hub_id=hub,
                rule="FREQ=WEEKLY", dtstart="2027-03-01T09:00:00", consignment={},
                request_fingerprint="f" * 64, status=status, booked_until=NOW,
                next_occurrence=None if days is None else NOW + timedelta(days=days),
                outcome={}, cancellation=None, created_at=NOW, updated_at=NOW,
            )
            for i, (hub, status, days) in enumerate(standing)
        ],
    }  # fmt: skip


def test_the_probe_never_hides_a_row_a_read_would_find(database_url: str) -> None:
    runner = asyncio.Runner()
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    runner.run(BookingService.spec.migrate(engine))

    async def check(closed: list, queued: list[str], standing: list, at: set[str]) -> None:
        async with sessions() as session, session.begin():
            for table, rows in _rows(closed, queued, standing).items():
                if rows:
                    await session.execute(insert(table), rows)
            latest = dict.fromkeys(sorted(at), NOW)
            probe = await Probe.read(session, latest, since=NOW)
            found = await Closures.load(session, latest, since=NOW)
            assert probe.closures == bool(found.rows)  # the read's own condition
            entries = await WaitingList.load(session, latest)
            assert probe.waiting == bool(entries.entries)
            reached = await Standing.load(session, CONFIGS, series_ids=(), hubs_at=latest)
            if reached.series:  # the probe's is wider: any active series at the hubs
                assert probe.series
            assert probe.series == any(h in at and s == ACTIVE for h, s, _ in standing)
            # saved reads, as the batch's handler makes them: nothing the read would find
            assert (await Closures.load(
                session, latest, since=NOW, none_in_force=not probe.closures
            )).rows == found.rows  # fmt: skip
            assert (
                await WaitingList.load(session, latest, none_waiting=not probe.waiting)
            ).entries == entries.entries
            assert (await Standing.load(
                session, CONFIGS, series_ids=(), hubs_at=latest, none_active=not probe.series
            )).series.keys() == reached.series.keys()  # fmt: skip
            await session.rollback()

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(closures, waiting, series, batches)
    def probe_agrees(closed: list, queued: list[str], standing: list, at: set[str]) -> None:
        runner.run(check(closed, queued, standing, at))

    try:
        probe_agrees()
    finally:
        runner.run(engine.dispose())
        runner.close()


async def test_the_stamps_are_the_catalogues(booking_sessions) -> None:
    async with booking_sessions() as session, session.begin():
        empty = await Probe.read(session, ["hub-a"], since=NOW)
        assert empty.stamps == {} and not (empty.closures or empty.waiting or empty.series)
        await session.execute(
            insert(store.hubs),
            [
                {
                    "id": h,
                    "config": CONFIGS[h].model_dump(mode="json"),
                    "updated_at": NOW + i * timedelta(seconds=1),
                }
                for i, h in enumerate(HUBS)
            ],
        )
        probe = await Probe.read(session, ["hub-a"], since=NOW)
        assert probe.stamps == {h: NOW + i * timedelta(seconds=1) for i, h in enumerate(HUBS)}
        catalogue = HubCatalogue()
        assert await catalogue.current(session, probe.stamps) == await HubCatalogue().current(
            session
        )


async def test_a_batch_at_quiet_hubs_reads_their_closures_waiting_lists_and_series_once(
    booking_sessions,
) -> None:
    """One statement (the probe) reads those three tables. With a closure in force at
    one of the hubs, the closures' own read comes back and the batch is decided with it:
    the closed hub's request is refused, the others are confirmed."""
    statements: list[str] = []

    @event.listens_for(booking_sessions.kw["bind"].sync_engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async with booking_sessions() as session, session.begin():
        await session.execute(
            insert(store.hubs),
            [
                {"id": h, "config": CONFIGS[h].model_dump(mode="json"), "updated_at": NOW}
                for h in HUBS
            ],
        )
    consumer = commands_consumer(
        booking_sessions, BookingHandlers(no_show_grace=timedelta(minutes=30))
    )
    reads = re.compile(r"\bFROM (hub_closures|waiting_list|series)\b")
    slot = NOW + timedelta(days=1, hours=4)  # Tuesday 10:00 in Berlin

    async def batch(first: int) -> dict[str, str]:
        """The answer each hub's request of a batch got."""
        deliveries = [
            command_delivery(BookingRequested(
                carrier_id="acme", carrier_reference=f"r{first + i}", hub_id=hub,
                slot_start=slot, consignment=consignment(),
            ), first + i, time=NOW, event_id=f"e{first + i}")
            for i, hub in enumerate(HUBS)
        ]  # fmt: skip
        statements.clear()
        await consumer.apply(deliveries)
        async with booking_sessions() as session:
            rows = await session.execute(
                select(store.bookings.c.hub_id, store.bookings.c.status).where(
                    store.bookings.c.carrier_reference.in_([f"r{first + i}" for i in range(3)])
                )
            )
            return {hub: status for hub, status in rows}

    assert await batch(0) == dict.fromkeys(HUBS, "confirmed")
    assert len([s for s in statements if reads.search(s)]) == 1

    async with booking_sessions() as session, session.begin():
        closed = _rows([("hub-b", 48, False)], [], [])[store.hub_closures]
        await session.execute(insert(store.hub_closures), closed)
    assert await batch(10) == {"hub-a": "confirmed", "hub-b": "rejected", "hub-c": "confirmed"}
    found = [reads.search(s).group(1) for s in statements if reads.search(s)]
    assert found.count("hub_closures") == 2 and len(found) == 2  # the probe's, then the read
