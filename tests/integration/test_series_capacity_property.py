"""Property: with standing bookings interleaved with requests, reschedules, cancellations,
series cancellations, requests that wait for a full slot (offers accepted and declined)
and hub closures declared and lifted, event time moving on (the horizon books the next occurrences) and
commands resent under new ids, no slot's capacity is ever exceeded, capacity in use is
exactly what the live bookings hold, no occurrence is decided twice, and every command
gets exactly one answer (a series command: one series answer plus one per occurrence).

The real handlers through the consumer's own apply path (inbox, one transaction per
record), on SQLite and PostgreSQL; Kafka is left out so hypothesis can try many
sequences (the Kafka path: test_booking_series.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from contracts.booking import (
    BookingCancellationRequested,
    BookingRequested,
    BookingRescheduleRequested,
)
from contracts.booking.closures import HubClosureLiftRequested, HubClosureRequested
from contracts.booking.series import SeriesCancelRequested, SeriesRequested
from contracts.booking.waitlist import WaitlistOfferAccept, WaitlistOfferDecline
from contracts.envelope import new_event
from services.booking import store
from services.booking.answers import ANSWER_TYPES
from services.booking.domain import HubConfig
from services.booking.handlers import BookingHandlers
from services.booking.service import BookingService
from services.runtime.consumer import Delivery
from services.runtime.db import make_engine, make_sessionmaker
from tests.integration.test_booking_requests_v2 import request_v2
from tests.support.booking import Record, commands_consumer
from tests.support.carrier import consignment
from tests.support.hubs import hub_config

START = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
HUB = HubConfig.model_validate(
    hub_config(docks_per_slot=2, volume_per_slot_m3=5.0, booking_horizon_days=3)
)
# requests aim at the hours the series book (09:00 and 10:00 Berlin, UTC+1)
SLOTS = [START + timedelta(days=d, hours=h) for d in range(1, 7) for h in (3, 4)]
SERIES_SUMMARIES = {
    "microhub.booking.series_accepted.v1",
    "microhub.booking.series_rejected.v1",
    "microhub.booking.series_cancelled.v1",
}

requests = st.tuples(
    st.just("request"), st.integers(0, 5), st.sampled_from(SLOTS), st.sampled_from([1.0, 2.5])
)
cancellations = st.tuples(st.just("cancel"), st.integers(0, 7), st.none(), st.none())
standing = st.tuples(
    st.just("series"),
    st.integers(0, 3),
    st.sampled_from(["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=TU,TH,SA", "FREQ=DAILY;COUNT=2"]),
    st.sampled_from([(9, 1.0), (10, 2.5), (9, 2.5)]),
)
moves = st.tuples(st.just("move"), st.integers(0, 2), st.sampled_from(SLOTS), st.none())
series_cancellations = st.tuples(st.just("end"), st.integers(0, 3), st.none(), st.none())
# waiting requests aim at one of the next two slots ahead of their time (two docks
# each), so that those fill and the next ones wait
waiting = st.tuples(st.just("wait"), st.integers(0, 6), st.integers(0, 1), st.none())
# a cancellation of a booking a rush got: frees a dock that a waiting request is offered
freeing = st.tuples(st.just("unwait"), st.integers(0, 6), st.none(), st.none())
answers_to_offers = st.tuples(
    st.sampled_from(["accept", "decline"]), st.integers(0, 3), st.none(), st.none()
)
closures = st.tuples(st.just("close"), st.integers(0, 1), st.sampled_from(SLOTS), st.none())
lifts = st.tuples(st.just("lift"), st.integers(0, 1), st.none(), st.none())
occurrence_cancellations = st.tuples(
    st.just("skip"), st.integers(0, 3), st.integers(1, 6), st.none()
)
operations = st.lists(
    st.tuples(
        st.one_of(
            requests,
            standing,
            cancellations,
            moves,
            series_cancellations,
            occurrence_cancellations,
            waiting,
            waiting,  # twice the weight: a list needs a few requests to form
            freeing,
            answers_to_offers,
            answers_to_offers,
            closures,
            lifts,
        ),
        st.integers(0, 20),  # hours the event time moves on before the command
        st.booleans(),  # sent again under a new id right after
    ),
    min_size=1,
    max_size=20,
)


def _payload(kind: str, ref: int, a, b):
    if kind == "request":
        return BookingRequested(
            carrier_id="acme",
            carrier_reference=f"r{ref}",
            hub_id=HUB.id,
            slot_start=a,
            consignment=consignment(volume_m3=b),
        )
    if kind == "cancel":
        return BookingCancellationRequested(
            carrier_id="acme", carrier_reference=f"r{ref}", hub_id=HUB.id
        )
    if kind == "wait":  # a v2 request that waits on the slot's list when it is full
        return request_v2(f"w{ref}", slot_start=a, wait=True)
    if kind == "unwait":
        return BookingCancellationRequested(
            carrier_id="acme", carrier_reference=f"w{ref}", hub_id=HUB.id
        )
    if kind in ("accept", "decline"):
        offer = WaitlistOfferAccept if kind == "accept" else WaitlistOfferDecline
        return offer(carrier_id="acme", carrier_reference=f"w{ref}", hub_id=HUB.id)
    if kind == "close":
        return HubClosureRequested(
            hub_id=HUB.id,
            closure_id=f"c{ref}",
            starts_at=a,
            ends_at=a + timedelta(hours=2),
            reason="a broken door",
            requested_by="operator",
        )
    if kind == "lift":
        return HubClosureLiftRequested(hub_id=HUB.id, closure_id=f"c{ref}", requested_by="op")
    if kind == "move":
        return BookingRescheduleRequested(
            carrier_id="acme", carrier_reference=f"r{ref}", hub_id=HUB.id, slot_start=a
        )
    if kind == "series":
        hour, volume = b
        return SeriesRequested(
            carrier_id="acme",
            carrier_reference=f"s{ref}",
            hub_id=HUB.id,
            rrule=a,
            dtstart=datetime(2027, 3, 1, hour),
            consignment=consignment(volume_m3=volume),
        )
    if kind == "end":
        return SeriesCancelRequested(carrier_id="acme", carrier_reference=f"s{ref}", hub_id=HUB.id)
    day = datetime(2027, 3, 1 + a)  # one occurrence of series s{ref}, at either hour
    return BookingCancellationRequested(
        carrier_id="acme", carrier_reference=f"s{ref}:{day:%Y%m%d}T0900", hub_id=HUB.id
    )


def test_series_never_exceed_capacity_nor_book_an_occurrence_twice(database_url: str) -> None:
    runner = asyncio.Runner()
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    handlers = BookingHandlers(no_show_grace=timedelta(minutes=30))
    runner.run(BookingService.spec.migrate(engine))
    consumer = commands_consumer(sessions, handlers)

    async def reset() -> None:
        async with sessions() as session, session.begin():
            for table in (store.outbox, store.bookings, store.slot_usage, store.hubs,
                          store.inbox, store.series, store.waiting_list,
                          store.hub_closures):  # fmt: skip
                await session.execute(delete(table))
            await store.upsert_hub(session, HUB)

    async def check_capacity() -> None:
        async with sessions() as session:
            for row in await session.execute(select(store.slot_usage)):
                assert 0 <= row.docks_used <= HUB.docks_per_slot
                assert 0 <= row.volume_used_l <= HUB.volume_per_slot_l

    async def run(ops) -> None:
        await reset()
        now, offset, sent = START, 0, []
        requested: list[int] = []
        waited: list[int] = []
        for (kind, ref, a, b), hours, again in ops:
            # what follows a rush comes soon after it (else its slot has always passed)
            now += timedelta(hours=hours if kind not in ("unwait", "accept", "decline") else 0)
            refs = [ref]
            if kind == "request":
                requested.append(ref)
            elif kind == "move" and requested:  # mostly a booking that was asked for
                refs = [requested[-1 - ref % len(requested)]]
            elif kind == "wait":
                # a rush of three at once for a slot ahead (two docks): one at least waits
                refs = [ref, ref + 1, ref + 2]
                waited.extend(refs)
                ahead = [slot for slot in SLOTS if slot > now + timedelta(hours=1)]
                a = ahead[a] if len(ahead) > a else SLOTS[-1]  # else: in the past, refused
            elif kind in ("accept", "decline", "unwait") and waited:  # mostly one that waits
                refs = [waited[-1 - ref % min(len(waited), 3)]]  # of the last rush
            for payload in [_payload(kind, r, a, b) for r in refs]:
                for _ in range(2 if again else 1):
                    event = new_event(
                        payload,
                        source="test",
                        subject=HUB.id,
                        time=now,
                        event_id=str(uuid.uuid4()),
                    )
                    delivery = Delivery(event, "commands", 0, offset, 0, HUB.id)
                    await consumer._process_delivery(Record(delivery), delivery)
                    await check_capacity()  # after every single command
                    sent.append((kind, event.id))
                    offset += 1
        # and the wall-clock sweep, after every slot: no request is left waiting
        async with consumer.units() as uow:
            await handlers.sweep_no_shows(uow, now=max(now, SLOTS[-1]) + timedelta(days=1))
        await check_capacity()
        assert consumer.dead_letters.count == 0

        async with sessions() as session:
            events = [
                json.loads(p)
                for p in (await session.execute(select(store.outbox.c.payload))).scalars()
            ]
            bookings = (await session.execute(select(store.bookings))).all()
            usage = {r.slot_start: r for r in await session.execute(select(store.slot_usage))}
        # every command answered, a series command with exactly one series answer
        answers = Counter(e.get("causationid") for e in events if e["type"] in ANSWER_TYPES)
        summaries = Counter(e.get("causationid") for e in events if e["type"] in SERIES_SUMMARIES)
        for kind, command_id in sent:
            assert answers[command_id] >= 1, (kind, command_id)
            assert summaries[command_id] == (1 if kind in ("series", "end") else 0)
            if kind not in ("series", "end"):
                assert answers[command_id] == 1
        # an occurrence (its reference has a ':') is decided once, however often its
        # series was sent or the horizon moved
        decided = Counter(
            e["data"]["booking_id"]
            for e in events
            if e["type"] in ("microhub.booking.confirmed.v1", "microhub.booking.rejected.v1")
            and ":" in e["data"]["carrier_reference"]
        )
        assert all(n == 1 for n in decided.values()), decided
        assert set(decided) == {b.id for b in bookings if ":" in b.carrier_reference}
        # capacity in use is exactly what the bookings that hold a slot hold (a no-show
        # of a passed slot, too)
        holding = ("confirmed", "checked_in", "no_show", "offered")  # an offer holds too
        # every request that waited ended, once: booked, or the list ended for it
        assert not [b.id for b in bookings if b.status in ("waitlisted", "offered")]
        for slot, used in usage.items():
            live = [b for b in bookings if b.slot_start == slot and b.status in holding]
            assert used.docks_used == len(live)
            assert used.volume_used_l == sum(b.volume_l for b in live)

    @settings(
        max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(ops=operations)
    def check(ops) -> None:
        runner.run(run(ops))

    try:
        check()
    finally:
        runner.run(engine.dispose())
        runner.close()
