"""Hub closures' rules (issue 16), pure: a slot that overlaps a closure is closed (the
request's and the move's ``hub_closed``), next-slot offers and the waiting list's offers
skip it, and the same hub without the closure is open again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.booking import RejectionReason
from services.booking import domain, slot_grid
from services.booking import waitlist_rules as rules
from services.booking.closures import ClosedRange, with_closures
from services.booking.domain import HubConfig, SlotUsage
from services.booking.waitlist_rules import WaitingEntry
from tests.support.hubs import TEST_HUB, hub_config

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)  # Tuesday 09:00 Berlin
HOUR = timedelta(hours=1)
HUB = HubConfig.model_validate(hub_config())
# 09:30 to 11:00 Berlin: the 09:00 slot overlaps it, so does 10:00; 11:00 is open
BROKEN = ClosedRange(
    closure_id="c1", starts_at=SLOT + HOUR / 2, ends_at=SLOT + 2 * HOUR, reason="door broken"
)
CLOSED = with_closures(HUB, [BROKEN])


def test_a_slot_overlapping_a_closure_is_closed_with_its_reason() -> None:
    assert slot_grid.closure_of(CLOSED, SLOT) == BROKEN
    assert slot_grid.closure_of(CLOSED, SLOT + HOUR) == BROKEN
    assert slot_grid.closure_of(CLOSED, SLOT + 2 * HOUR) is None
    assert slot_grid.closure_of(CLOSED, SLOT - HOUR) is None
    reason, message = slot_grid.grid_problem(CLOSED, SLOT) or (None, "")
    assert reason is RejectionReason.HUB_CLOSED and "door broken" in message
    assert slot_grid.grid_problem(HUB, SLOT) is None  # the catalogue's hub knows no closure


def test_requests_into_a_closure_are_rejected_and_offered_slots_outside_it() -> None:
    rejection = domain.check_slot(CLOSED, SLOT + HOUR, 1.0, now=NOW, usage=SlotUsage())
    assert rejection is not None and rejection.reason is RejectionReason.HUB_CLOSED
    offers = domain.next_fitting_slots(
        CLOSED, after=SLOT - 2 * HOUR, now=NOW, volume_l=100, usage={}
    )
    assert [o.start for o in offers] == [SLOT - HOUR, SLOT + 2 * HOUR, SLOT + 3 * HOUR]


def test_a_closed_slot_is_offered_to_nobody_waiting_until_the_closure_is_lifted() -> None:
    waiting = [WaitingEntry("w", TEST_HUB, SLOT, 100, NOW, 1)]
    assert rules.offers(CLOSED, SLOT, SlotUsage(), waiting, now=NOW) == []
    reopened = with_closures(CLOSED, [])
    assert [o.booking_id for o in rules.offers(reopened, SLOT, SlotUsage(), waiting, now=NOW)] == [
        "w"
    ]
