"""Property: whatever carriers send, and however often they resend it, no slot's docks
or volume is ever exceeded and every request gets exactly one outcome.

Runs the real handlers against the real databases (SQLite and PostgreSQL); Kafka is left
out so that hypothesis can try many sequences.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from contracts.booking import BookingCancellationRequested, BookingRequested
from contracts.envelope import new_event
from services.booking import store
from services.booking.domain import HubConfig
from services.booking.handlers import BookingHandlers
from services.runtime import migrations
from services.runtime.consumer import Delivery
from services.runtime.db import make_engine, make_sessionmaker
from tests.support.carrier import consignment
from tests.support.hubs import hub_config

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
SLOTS = [datetime(2027, 3, 2, 8 + i, tzinfo=UTC) for i in range(3)]  # Tuesday 09:00..11:00 local
HUB = HubConfig.model_validate(hub_config(docks_per_slot=3, volume_per_slot_m3=5.0))

requests = st.builds(
    lambda ref, slot, volume: ("request", f"r{ref}", slot, volume),
    st.integers(0, 11),
    st.sampled_from(SLOTS),
    st.sampled_from([0.5, 1.0, 1.75, 2.5, 4.0]),
)
cancellations = st.builds(lambda ref: ("cancel", f"r{ref}", None, None), st.integers(0, 11))
operations = st.lists(st.one_of(requests, requests, cancellations), min_size=1, max_size=25)


def _delivery(payload, offset: int) -> Delivery:
    event = new_event(
        payload, source="test", subject=payload.hub_id, time=NOW, event_id=str(uuid.uuid4())
    )
    return Delivery(event, "commands", 0, offset, int(NOW.timestamp() * 1000), payload.hub_id)


def test_capacity_is_never_exceeded_and_every_request_gets_one_outcome(database_url: str) -> None:
    runner = asyncio.Runner()
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    handlers = BookingHandlers(
        max_clock_skew=timedelta(minutes=5), no_show_grace=timedelta(minutes=30)
    )
    runner.run(migrations.upgrade(engine, "booking"))

    async def reset() -> None:
        async with sessions() as session, session.begin():
            for table in (store.outbox, store.bookings, store.slot_usage, store.hubs):
                await session.execute(delete(table))
            await store.upsert_hub(session, HUB)

    async def run(ops) -> None:
        await reset()
        sent_requests: dict[str, int] = {}
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
            else:
                payload = BookingCancellationRequested(
                    carrier_id="acme", carrier_reference=ref, hub_id=HUB.id
                )
            async with sessions() as session, session.begin():
                await handlers.handle(session, _delivery(payload, offset))
            # the invariant holds after every single command, not only at the end
            async with sessions() as session:
                for row in await session.execute(select(store.slot_usage)):
                    assert 0 <= row.docks_used <= HUB.docks_per_slot
                    assert 0 <= row.volume_used_l <= HUB.volume_per_slot_l

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
        # and capacity in use is exactly what the live bookings hold
        for slot in SLOTS:
            live = [b for b in bookings if b.slot_start == slot and b.status == "confirmed"]
            used = usage.get(slot)
            assert (used.docks_used if used else 0) == len(live)
            assert (used.volume_used_l if used else 0) == sum(b.volume_l for b in live)

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(ops=operations)
    def check(ops) -> None:
        runner.run(run(ops))

    try:
        check()
    finally:
        runner.run(engine.dispose())
        runner.close()
