"""Hypothesis over the waiting list as booking runs it (waiting_list.py over the batch's
ledger, in memory): requests that wait, cancellations, accepts, declines and event time
passing, interleaved at random on one slot. Capacity is never exceeded, held offers
included, and the slot's usage is exactly what its bookings and offers hold; no waiting
request that fits stays waiting while capacity is free; every request ends with exactly
one final outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.booking import (
    BookingConfirmed,
    BookingRequestedV2,
    HubSummary,
    WaitlistOfferAccept,
    WaitlistOfferDecline,
)
from services.booking import domain, requests_v2
from services.booking import waitlist_rules as rules
from services.booking.domain import BookingStatus, HubConfig
from services.booking.ledger import Ledger
from services.booking.waiting_list import WaitingList
from tests.support.carrier import consignment
from tests.support.hubs import TEST_HUB, hub_config

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)
SLOT = datetime(2027, 3, 1, 9, tzinfo=UTC)  # 4 hours later: offers expire and slots begin
HUB = HubConfig.model_validate(
    hub_config(docks_per_slot=2, volume_per_slot_m3=4.0, waitlist_offer_minutes=15)
)
FINAL = {"microhub.booking.confirmed.v1", "microhub.booking.waitlist_ended.v1"}


class Emitted:
    """A unit of work as far as the waiting list uses one: what it emits, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def emit(self, payload: Any, *, key: str, time: datetime) -> None:
        self.events.append(payload)


def request(reference: str, volume_m3: float) -> BookingRequestedV2:
    return BookingRequestedV2.model_validate(
        {
            "carrier_id": "acme",
            "carrier_reference": reference,
            "hub_id": TEST_HUB,
            "slot_start": SLOT,
            "consignment": consignment(volume_m3=volume_m3),
            "wait": True,
        }
    )


def decide_request(
    uow: Emitted, ledger: Ledger, waiting: WaitingList, ref: str, volume: float, now: datetime
) -> None:
    original = request(ref, volume)
    v1 = requests_v2.as_v1(original)
    volume_l = domain.litres(volume)
    rejection = domain.check_request(HUB, v1, now=now, usage=ledger.usage_of(HUB.id, SLOT))
    booking_id = domain.booking_id_for("acme", ref)
    status = BookingStatus.REJECTED
    if rejection is None:
        assert ledger.take(HUB, SLOT, volume_l)
        status = BookingStatus.CONFIRMED
    elif rules.may_wait(rejection):
        waiting.enqueue(
            hub=HUB, booking_id=booking_id, command=v1, original=original,
            rejection=rejection, next_slots=[], volume_l=volume_l, now=now,
        )  # fmt: skip
        status = BookingStatus.WAITLISTED
    ledger.add(
        dict(
            id=booking_id, carrier_id="acme", carrier_reference=ref, hub_id=HUB.id,
            slot_start=SLOT, slot_end=SLOT + HUB.slot_length, status=status, volume_l=volume_l,
            request_fingerprint=domain.fingerprint(v1), request=v1.model_dump(mode="json"),
            reason=None, message=None, outcome=confirmation(v1), cancellation=None, check_in=None,
            rescheduled=None, decided_at=now,
        )
    )  # fmt: skip


def confirmation(command: Any) -> dict[str, Any]:
    """The stored outcome of a request confirmed at once (what an accept sent to a booking
    that never waited answers again)."""
    payload = BookingConfirmed(
        booking_id=domain.booking_id_for(command.carrier_id, command.carrier_reference),
        carrier_id=command.carrier_id,
        carrier_reference=command.carrier_reference,
        hub_id=HUB.id,
        slot_start=SLOT,
        slot_end=SLOT + HUB.slot_length,
        hub=HubSummary(
            hub_id=HUB.id, name=HUB.name, city_id=HUB.city.id, city_name=HUB.city.name,
            country=HUB.city.country, timezone=HUB.city.timezone, location=HUB.location,
        ),
        consignment=command.consignment,
    )  # fmt: skip
    return {"type": payload.event_type, "data": payload.model_dump(mode="json")}


operation = st.one_of(
    st.tuples(st.just("request"), st.sampled_from([0.5, 1.0, 2.0, 3.5])),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("accept"), st.integers(0, 30)),
    st.tuples(st.just("decline"), st.integers(0, 30)),
    st.tuples(st.just("wait"), st.integers(1, 40)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(operation, max_size=40))
def test_capacity_holds_offers_go_to_who_fits_and_every_request_ends_once(ops) -> None:
    ledger = Ledger({HUB.id: HUB})
    waiting = WaitingList({}, {})
    uow = Emitted()
    now, refs = NOW, []
    waited_ids: set[str] = set()
    for kind, arg in ops:
        if now >= SLOT:
            break
        waiting.settle(uow, ledger, HUB.id, now)  # type: ignore[arg-type]
        if kind == "request":
            refs.append(f"r{len(refs)}")
            decide_request(uow, ledger, waiting, refs[-1], arg, now)
            waited_ids.update(waiting.entries)
        elif kind == "cancel" and refs:
            booking = ledger.find(domain.booking_id_for("acme", refs[arg % len(refs)]))
            if booking is not None and booking.status is BookingStatus.CONFIRMED:
                ledger.transition(booking, BookingStatus.CANCELLED, now)
                ledger.release(HUB.id, SLOT, booking.volume_l)
        elif kind in ("accept", "decline") and refs:
            model = WaitlistOfferAccept if kind == "accept" else WaitlistOfferDecline
            command = model(
                carrier_id="acme", carrier_reference=refs[arg % len(refs)], hub_id=HUB.id
            )
            waiting.answer(uow, ledger, command, now)  # type: ignore[arg-type]
        elif kind == "wait":
            now += timedelta(minutes=arg)
        waiting.offer_freed(uow, ledger, now)  # type: ignore[arg-type]

        usage = ledger.usage_of(HUB.id, SLOT)
        holding = [
            b for b in ledger.bookings.values()
            if b.status in (BookingStatus.CONFIRMED, BookingStatus.OFFERED)
        ]  # fmt: skip
        assert usage.docks_used == len(holding) <= HUB.docks_per_slot
        assert usage.volume_used_l == sum(b.volume_l for b in holding) <= HUB.volume_per_slot_l
        if now < SLOT:  # nobody waits for room that is free
            for entry in rules.line(waiting.entries.values(), HUB.id, SLOT):
                assert domain.fits(HUB, usage, entry.volume_l) is not None

    waiting.settle(uow, ledger, HUB.id, max(now, SLOT))  # the slot began
    assert waiting.entries == {}
    finals: dict[str, set[str]] = {}
    for event in uow.events:
        if event.event_type in FINAL:
            finals.setdefault(event.carrier_reference, set()).add(event.event_type)
    for booking in ledger.bookings.values():
        waited = booking.id in waited_ids
        assert booking.status not in (BookingStatus.WAITLISTED, BookingStatus.OFFERED)
        # a request that waited has one final outcome (an answer sent again is the same);
        # one confirmed at once may only hear its confirmation again (an accept of it)
        outcomes = finals.get(booking.carrier_reference, set())
        if waited:
            assert len(outcomes) == 1
        else:
            assert outcomes <= {"microhub.booking.confirmed.v1"}
        if booking.status is BookingStatus.WAITLIST_ENDED:
            assert finals[booking.carrier_reference] == {"microhub.booking.waitlist_ended.v1"}
