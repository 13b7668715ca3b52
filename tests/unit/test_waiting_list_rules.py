"""The waiting list's rules (issue 16), pure: first come first served by request time,
skipping a request the freed capacity cannot take; offers held for the hub's minutes,
never past the slot's start; what ends when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from contracts.booking import RejectionReason, WaitlistEndReason
from services.booking import waitlist_rules as rules
from services.booking.domain import HubConfig, Rejection, SlotUsage, fits
from services.booking.waitlist_rules import WaitingEntry
from tests.support.hubs import TEST_HUB, hub_config

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)
SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)
HUB = HubConfig.model_validate(hub_config(docks_per_slot=2, volume_per_slot_m3=4.0))


def entry(name: str, volume_l: int, minute: int, seq: int = 0, **kw) -> WaitingEntry:
    return WaitingEntry(name, TEST_HUB, SLOT, volume_l, NOW + timedelta(minutes=minute), seq, **kw)


def test_only_a_full_slot_may_be_waited_for() -> None:
    assert rules.may_wait(Rejection(RejectionReason.DOCKS_FULL, ""))
    assert rules.may_wait(Rejection(RejectionReason.VOLUME_FULL, ""))
    assert not rules.may_wait(Rejection(RejectionReason.IN_THE_PAST, ""))
    assert not rules.may_wait(Rejection(RejectionReason.CONSIGNMENT_TOO_LARGE, ""))


def test_the_earliest_request_is_first_in_line_whatever_order_it_was_decided_in() -> None:
    late = entry("late", 500, minute=5, seq=1)
    early = entry("early", 500, minute=1, seq=2)  # an earlier time, decided later
    assert rules.line([late, early], TEST_HUB, SLOT) == [early, late]
    assert rules.position([late, early], late) == 2


def test_a_freed_dock_goes_to_the_first_that_fits_and_the_others_keep_their_place() -> None:
    big, small = entry("big", 3500, minute=1), entry("small", 500, minute=2)
    # one dock free, 3 m³ of 4 still booked: big does not fit, small does
    [offer] = rules.offers(HUB, SLOT, SlotUsage(1, 3000), [big, small], now=NOW)
    assert offer.booking_id == "small"
    assert offer.offered_until == NOW + timedelta(minutes=HUB.waitlist_offer_minutes)
    # the whole slot free: big first, and small beside it on the second dock
    offered = rules.offers(HUB, SLOT, SlotUsage(), [big, small], now=NOW)
    assert [o.booking_id for o in offered] == ["big", "small"]


def test_an_offer_never_outlasts_its_slot_and_a_slot_that_began_is_offered_to_nobody() -> None:
    close = SLOT - timedelta(minutes=5)
    [offer] = rules.offers(HUB, SLOT, SlotUsage(), [entry("a", 100, 0)], now=close)
    assert offer.offered_until == SLOT
    assert rules.offers(HUB, SLOT, SlotUsage(), [entry("a", 100, 0)], now=SLOT) == []


def test_expired_offers_and_slots_that_began_end_in_the_order_they_happened() -> None:
    offered = entry("o", 100, 0, offered_until=NOW + timedelta(minutes=15))
    waiting = entry("w", 100, 1)
    assert rules.ended([offered, waiting], TEST_HUB, NOW + timedelta(minutes=14)) == []
    assert rules.ended([offered, waiting], TEST_HUB, NOW + timedelta(minutes=15)) == [
        (offered, WaitlistEndReason.OFFER_EXPIRED)
    ]
    assert rules.ended([offered, waiting], TEST_HUB, SLOT) == [
        (offered, WaitlistEndReason.OFFER_EXPIRED),
        (waiting, WaitlistEndReason.SLOT_PASSED),
    ]


@given(
    volumes=st.lists(st.integers(1, 4500), max_size=8),
    minutes=st.lists(st.integers(0, 30), min_size=8, max_size=8),
    docks_used=st.integers(0, 2),
    volume_used=st.integers(0, 4000),
)
def test_offers_go_first_come_first_served_to_every_request_that_fits(
    volumes: list[int], minutes: list[int], docks_used: int, volume_used: int
) -> None:
    entries = [entry(f"r{i}", v, minutes[i], seq=i) for i, v in enumerate(volumes)]
    used = SlotUsage(docks_used, volume_used)
    offered = {o.booking_id for o in rules.offers(HUB, SLOT, used, entries, now=NOW)}
    # walking the line in order: each request is offered exactly when it fits what the
    # ones before it were offered left; capacity is never exceeded
    for e in sorted(entries, key=lambda e: e.place):
        if fits(HUB, used, e.volume_l) is None:
            assert e.booking_id in offered
            used = SlotUsage(used.docks_used + 1, used.volume_used_l + e.volume_l)
        else:
            assert e.booking_id not in offered
    if offered:
        assert used.docks_used <= HUB.docks_per_slot
        assert used.volume_used_l <= HUB.volume_per_slot_l
