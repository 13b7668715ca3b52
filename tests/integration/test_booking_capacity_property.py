"""Property: whatever carriers send (requests, cancellations, moves to another slot), and
however often they resend it, no slot's docks or volume is ever exceeded, capacity in use
is exactly what the live bookings hold, and every command gets exactly one answer — also while two
consumers overlap on one partition, as during a rebalance: the old owner still works
through records the new owner starts again from the last committed offset.

Runs the real handlers, through the consumer's own apply path (inbox claim and handler
in one transaction, retries), against the real databases (SQLite and PostgreSQL); Kafka
is left out so that hypothesis can try many sequences.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from contracts.booking import (
    BookingCancellationRequested,
    BookingRequested,
    BookingRescheduleRequested,
)
from services.booking import store
from services.booking.answers import ANSWER_TYPES
from services.booking.domain import HubConfig
from services.booking.handlers import BookingHandlers
from services.booking.service import BookingService
from services.runtime.consumer import Delivery, RecordApplier
from services.runtime.db import make_engine, make_sessionmaker
from tests.support.booking import Record, command_delivery, commands_consumer
from tests.support.carrier import consignment
from tests.support.hubs import hub_config

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
SLOTS = [datetime(2027, 3, 2, 8 + i, tzinfo=UTC) for i in range(3)]  # Tuesday 09:00..11:00 local
MOVE_ANSWERS = {"microhub.booking.rescheduled.v1", "microhub.booking.reschedule_rejected.v1"}
HUB = HubConfig.model_validate(hub_config(docks_per_slot=3, volume_per_slot_m3=5.0))

requests = st.builds(
    lambda ref, slot, volume: ("request", f"r{ref}", slot, volume),
    st.integers(0, 11),
    st.sampled_from(SLOTS),
    st.sampled_from([0.5, 1.0, 1.75, 2.5, 4.0]),
)
cancellations = st.builds(lambda ref: ("cancel", f"r{ref}", None, None), st.integers(0, 11))
moves = st.builds(
    lambda ref, slot: ("move", f"r{ref}", slot, None), st.integers(0, 11), st.sampled_from(SLOTS)
)
operations = st.lists(st.one_of(requests, requests, cancellations, moves), min_size=1, max_size=25)
# where the old owner stops and the new owner starts, as fractions of the partition
overlaps = st.tuples(st.floats(0, 1), st.floats(0, 1)).map(lambda t: (max(t), min(t)))


def test_capacity_is_never_exceeded_and_every_request_gets_one_outcome(database_url: str) -> None:
    runner = asyncio.Runner()
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    handlers = BookingHandlers(no_show_grace=timedelta(minutes=30))
    runner.run(BookingService.spec.migrate(engine))

    # the instance that owned the partition, and the one it moved to (its own engine)
    other_engine = make_engine(database_url)
    instances = [
        commands_consumer(sessions, handlers),
        commands_consumer(make_sessionmaker(other_engine), handlers),
    ]

    async def reset() -> None:
        async with sessions() as session, session.begin():
            for table in (store.outbox, store.bookings, store.slot_usage, store.hubs, store.inbox):
                await session.execute(delete(table))
            await store.upsert_hub(session, HUB)

    async def check_capacity() -> None:
        async with sessions() as session:
            for row in await session.execute(select(store.slot_usage)):
                assert 0 <= row.docks_used <= HUB.docks_per_slot
                assert 0 <= row.volume_used_l <= HUB.volume_per_slot_l

    async def run(ops, overlap: tuple[float, float]) -> None:
        await reset()
        sent_requests: dict[str, int] = {}
        deliveries = []
        for offset, (kind, ref, slot, volume) in enumerate(ops):
            if kind == "request":
                payload = BookingRequested(
                    carrier_id="acme",
                    carrier_reference=ref,
                    hub_id=HUB.id,
                    slot_start=slot,
                    consignment=consignment(volume_m3=volume),
                )
                sent_requests[ref] = sent_requests.get(ref, 0) + 1
            elif kind == "move":
                payload = BookingRescheduleRequested(
                    carrier_id="acme", carrier_reference=ref, hub_id=HUB.id, slot_start=slot
                )
            else:
                payload = BookingCancellationRequested(
                    carrier_id="acme", carrier_reference=ref, hub_id=HUB.id
                )
            deliveries.append(command_delivery(payload, offset, time=NOW))
        # the old owner works up to ``stop``; the new one starts again at ``start`` (its
        # last committed offset), so both apply the records in between, concurrently
        stop, start = (round(f * len(deliveries)) for f in overlap)

        async def work(instance: RecordApplier, part: list[Delivery]) -> None:
            for delivery in part:
                await instance._process_delivery(Record(delivery), delivery)
                # the invariant holds after every single command, not only at the end
                await check_capacity()

        await asyncio.gather(
            work(instances[0], deliveries[:stop]), work(instances[1], deliveries[start:])
        )
        assert sum(i.dead_letters.count for i in instances) == 0

        async with sessions() as session:
            events = [
                json.loads(p)
                for p in (await session.execute(select(store.outbox.c.payload))).scalars()
            ]
            bookings = (await session.execute(select(store.bookings))).all()
            usage = {r.slot_start: r for r in await session.execute(select(store.slot_usage))}
        outcomes: dict[str, int] = {}
        for event in events:
            if event["type"] in ("microhub.booking.confirmed.v1", "microhub.booking.rejected.v1"):
                ref = event["data"]["carrier_reference"]
                outcomes[ref] = outcomes.get(ref, 0) + 1
        assert outcomes == sent_requests  # one outcome per request sent (resends included)
        # every command, a move too, answered once (the records both instances applied
        # were applied once): as many answers as commands, of each kind
        answers = [e for e in events if e["type"] in ANSWER_TYPES]
        assert len(answers) == len(deliveries)
        to_moves = [e for e in answers if e["type"] in MOVE_ANSWERS or e["data"].get(
            "command_type") == "microhub.booking.reschedule_requested.v1"]  # fmt: skip
        assert len(to_moves) == sum(1 for kind, *_ in ops if kind == "move")
        # and capacity in use is exactly what the live bookings hold
        for slot in SLOTS:
            live = [b for b in bookings if b.slot_start == slot and b.status == "confirmed"]
            used = usage.get(slot)
            assert (used.docks_used if used else 0) == len(live)
            assert (used.volume_used_l if used else 0) == sum(b.volume_l for b in live)

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(ops=operations, overlap=overlaps)
    def check(ops, overlap) -> None:
        runner.run(run(ops, overlap))

    try:
        check()
    finally:
        runner.run(engine.dispose())
        runner.run(other_engine.dispose())
        runner.close()
