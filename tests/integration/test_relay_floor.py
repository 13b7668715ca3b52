"""PostgreSQL: the relay reads pending rows from a floor past what it published (the rows
sent since the last vacuum leave dead index entries below it, which the read no longer
walks), and no row is lost below that floor. The case that matters: a transaction took
its outbox ids, another committed higher ids, a pass published those and moved past,
then the first committed. Its unit of work lowers the floor it noted before writing,
so the next pass reads it. (SQLite has one writer at a time: ids are committed in
order there, and the same code runs.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.booking import BookingCancellationRequested
from contracts.envelope import new_event
from services.booking import store as booking_store
from services.runtime.db import make_sessionmaker
from services.runtime.outbox import enqueue
from services.runtime.outbox_relay import OutboxRelay
from services.runtime.uow import UnitsOfWork

HUB = "hub-1"


class _Published:
    def __init__(self) -> None:
        self.references: list[str] = []

    async def publish(self, topic: str, key: bytes, value: bytes, headers: dict[str, str]):
        self.references.append(_reference(value))

        async def ack() -> None:
            return None

        return ack()


def _cancellation(reference: str) -> BookingCancellationRequested:
    return BookingCancellationRequested(carrier_id="acme", carrier_reference=reference, hub_id=HUB)


def _setup(engine: AsyncEngine) -> tuple[OutboxRelay, UnitsOfWork, _Published]:
    published = _Published()
    relay = OutboxRelay(
        service="booking", engine=engine, outbox=booking_store.outbox, publish=published.publish
    )
    units = UnitsOfWork(
        make_sessionmaker(engine),
        source="test/booking",
        outbox=booking_store.outbox,
        topic=lambda name: name,
        floor=relay,
    )
    return relay, units, published


async def _commit(units: UnitsOfWork, reference: str) -> None:
    async with units() as uow:
        uow.emit(_cancellation(reference), key=HUB, time=datetime.now(UTC))


async def _ids(engine: AsyncEngine) -> dict[str, int]:
    """Each row's id by the carrier reference in its payload."""
    o = booking_store.outbox
    async with make_sessionmaker(engine)() as session:
        rows = (await session.execute(select(o.c.id, o.c.payload))).all()
    return {_reference(payload): row_id for row_id, payload in rows}


def _reference(payload: bytes) -> str:
    return json.loads(payload)["data"]["carrier_reference"]


async def test_a_unit_of_work_committed_below_the_floor_is_read_by_the_next_pass(
    booking_engine_pg,
) -> None:
    engine = booking_engine_pg
    relay, units, published = _setup(engine)
    await _commit(units, "first")
    assert await relay.relay_once() == 1  # the floor moves past "first"
    async with units() as late:
        late.emit(_cancellation("late"), key=HUB, time=datetime.now(UTC))
        await late.flush()  # "late" has its id now, uncommitted
        await _commit(units, "early")  # a higher id, committed first
        assert await relay.relay_once() == 1
        ids = await _ids(engine)
        # the fault overlapped the work: the pass moved past the id "late" holds
        assert relay.floor_mark() > ids["early"] > ids["first"]
    assert await relay.relay_once() == 1  # after "late" committed
    assert published.references == ["first", "early", "late"]
    ids = await _ids(engine)
    assert ids["first"] < ids["late"] < ids["early"]


async def test_a_pass_reads_from_its_floor_and_a_notify_reads_everything(booking_engine_pg) -> None:
    """A row committed below the floor by a writer that does not lower it (another
    process; its NOTIFY calls `notify`) waits for that, or for the safety poll, which
    reads from the start too."""
    engine = booking_engine_pg
    relay, units, published = _setup(engine)
    sessions = make_sessionmaker(engine)
    async with sessions() as elsewhere:
        await elsewhere.begin()
        await enqueue(
            elsewhere,
            booking_store.outbox,
            new_event(
                _cancellation("elsewhere"), source="test", subject=HUB, time=datetime.now(UTC)
            ),
            topic="t",
            key=HUB,
        )
        await _commit(units, "here")
        assert await relay.relay_once() == 1
        await elsewhere.commit()
    assert await relay.relay_once() == 0  # below the floor: not read
    relay.notify()
    assert await relay.relay_once() == 1
    assert published.references == ["here", "elsewhere"]
