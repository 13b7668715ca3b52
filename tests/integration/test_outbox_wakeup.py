"""PostgreSQL: events committed by another process (a standby instance, the HTTP API
process) are published at once, not at the active relay's next idle poll: the outbox's
trigger NOTIFYs on commit and the relay LISTENs. A lost LISTEN connection loses no row and
is replaced. The NOTIFY of the relay's own process's commits (which woke it in memory
already) does not cost a second, empty pass. (SQLite: one process per database, woken in memory; the other outbox tests
cover it.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.booking import BookingCancellationRequested
from contracts.envelope import new_event
from services.booking import store as booking_store
from services.booking.service import BookingService
from services.runtime.db import make_engine, make_sessionmaker
from services.runtime.outbox import enqueue
from services.runtime.outbox_relay import OutboxRelay
from tests.support.waiting import eventually

# far beyond every wait below: only a wake-up can publish in time
LONG_POLL = 30.0
SOON = 5.0  # a commit elsewhere is published within this


@pytest.fixture
async def engines(postgres_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """The active relay's process and another process on the same booking database."""
    relaying = make_engine(postgres_url)
    await BookingService.spec.migrate(relaying)
    other = make_engine(postgres_url)
    yield relaying, other
    await other.dispose()
    await relaying.dispose()


async def _commit_elsewhere(engine: AsyncEngine, reference: str) -> None:
    payload = BookingCancellationRequested(
        carrier_id="acme", carrier_reference=reference, hub_id="hub-1"
    )
    event = new_event(payload, source="test", subject="hub-1", time=datetime.now(UTC))
    async with make_sessionmaker(engine)() as session, session.begin():
        await enqueue(session, booking_store.outbox, event, topic="t", key="hub-1")


class _Relay:
    def __init__(self, engine: AsyncEngine, safety_poll: float = LONG_POLL) -> None:
        self.references: list[str] = []
        self.relay = OutboxRelay(
            service="booking",
            engine=engine,
            outbox=booking_store.outbox,
            publish=self.publish,
            poll_interval=safety_poll,
            safety_poll_interval=safety_poll,
        )

    async def publish(self, topic, key, payload, headers):
        self.references.append(json.loads(payload)["data"]["carrier_reference"])
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def test_a_commit_by_another_process_is_published_without_waiting_for_the_poll(
    engines,
) -> None:
    relaying, other = engines
    relay = _Relay(relaying)
    relay.relay.start()
    try:
        await eventually(lambda: relay.relay.passes >= 1, what="the relay's first pass")
        for reference in ("a", "b", "c"):
            await _commit_elsewhere(other, reference)
            await eventually(
                lambda r=reference: r in relay.references,  # type: ignore[misc]
                what=f"{reference} published",
                timeout=SOON,
                describe=lambda: relay.references,
            )
    finally:
        await relay.relay.stop()
    assert relay.references == ["a", "b", "c"]
    assert relay.relay.listener.notifications >= 1  # c at least: LISTEN was on by then


async def test_a_lost_listen_connection_loses_no_row_and_is_replaced(engines) -> None:
    relaying, other = engines
    relay = _Relay(relaying)
    relay.relay.start()
    try:
        await eventually(lambda: relay.relay.listener.listening, what="the relay to LISTEN")
        # the database drops the relay's LISTEN connection (a restart, a network cut, an
        # administrator), and a row is committed before the relay could listen again
        async with other.begin() as conn:
            killed = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
            assert killed.scalars().all() == [True]
        await _commit_elsewhere(other, "during-the-outage")
        await eventually(
            lambda: "during-the-outage" in relay.references,
            what="the row committed while the LISTEN connection was gone",
            timeout=SOON,
        )
        await eventually(
            lambda: relay.relay.listener.listens == 2 and relay.relay.listener.listening,
            what="the relay to LISTEN again",
            timeout=SOON,
        )
        await _commit_elsewhere(other, "after")
        await eventually(
            lambda: "after" in relay.references, what="woken again by NOTIFY", timeout=SOON
        )
    finally:
        await relay.relay.stop()
    assert relay.references == ["during-the-outage", "after"]


async def test_a_standby_that_takes_over_is_woken_by_the_commits_of_others(engines) -> None:
    first, second = engines
    active, standby = _Relay(first), _Relay(second)
    active.relay.start()
    await eventually(lambda: active.relay.passes >= 1, what="the first relay to be active")
    standby.relay.start()
    try:
        # the standby's process commits: the active relay publishes it, the standby not
        await _commit_elsewhere(second, "by-the-standby")
        await eventually(
            lambda: active.references == ["by-the-standby"], what="published", timeout=SOON
        )
        await active.relay.stop()  # its process stops: the standby takes the lock over
        await eventually(lambda: standby.relay.passes >= 1, what="the standby to take over")
        await _commit_elsewhere(first, "after-the-takeover")
        await eventually(
            lambda: standby.references == ["after-the-takeover"],
            what="the new active relay to publish",
            timeout=SOON,
            describe=lambda: (active.references, standby.references),
        )
    finally:
        await standby.relay.stop()
        await active.relay.stop()
    assert active.references == ["by-the-standby"]


async def test_a_commit_of_the_relays_own_process_costs_one_pass_not_two(engines) -> None:
    """The process wakes its relay in memory; the NOTIFY of the same commit, from one of
    the process's own pooled connections, comes after the rows were published."""
    relaying, _ = engines
    relay = _Relay(relaying)
    relay.relay.start()
    try:
        await eventually(lambda: relay.relay.listener.listening, what="the relay to LISTEN")
        await eventually(lambda: relay.relay.passes >= 2, what="the pass LISTEN asked for")
        for reference in ("own-1", "own-2"):
            passes, ignored = relay.relay.passes, relay.relay.listener.own_notifications
            await _commit_elsewhere(relaying, reference)  # this process's pool
            relay.relay.notify()  # as its unit of work does after the commit
            await eventually(
                lambda r=reference: r in relay.references,  # type: ignore[misc]
                what=f"{reference} published",
                timeout=SOON,
            )
            await eventually(
                lambda i=ignored: relay.relay.listener.own_notifications > i,  # type: ignore[misc]
                what="the commit's own NOTIFY",
                timeout=SOON,
            )
            assert relay.relay.passes == passes + 1
    finally:
        await relay.relay.stop()
    assert relay.references == ["own-1", "own-2"]
    assert relay.relay.listener.notifications == 0


async def test_a_commit_of_the_relays_own_process_whose_wake_up_was_missed_is_published(
    engines,
) -> None:
    """Its NOTIFY is ignored; the safety poll publishes it, as when a NOTIFY is lost."""
    relaying, _ = engines
    relay = _Relay(relaying, safety_poll=1.0)
    relay.relay.start()
    try:
        await eventually(lambda: relay.relay.listener.listening, what="the relay to LISTEN")
        await _commit_elsewhere(relaying, "missed")  # and no relay.notify()
        await eventually(
            lambda: relay.relay.listener.own_notifications >= 1, what="the commit's NOTIFY"
        )
        await eventually(lambda: "missed" in relay.references, what="the safety poll", timeout=SOON)
    finally:
        await relay.relay.stop()
