"""Scorecards and the no-show rule, without I/O (the figures of docs/scorecards.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.hubs import NoShowRule
from services.booking import scorecards
from services.booking.domain import BookingStatus, HubConfig
from services.booking.scorecards import BookingFacts, Outcome
from tests.support.hubs import hub_config

S = BookingStatus
MARCH = date(2027, 3, 1)
# 09:00 Berlin on 2 March 2027 (UTC+1)
SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RULE = NoShowRule(max_no_show_rate=0.2, window_days=30, min_bookings=5, limited_horizon_days=2)


def hub(**overrides) -> HubConfig:
    return HubConfig.model_validate(hub_config(**overrides))


def facts(status: BookingStatus, carrier: str = "acme", **kw) -> BookingFacts:
    return BookingFacts(
        carrier_id=carrier, slot_start=kw.pop("slot_start", SLOT), status=status, **kw
    )


def card_of(*bookings: BookingFacts) -> dict[str, object]:
    [card] = scorecards.scorecards(hub(), MARCH, bookings)
    return card.figures()


# ------------------------------------------------------------------------ outcomes ----


def test_a_check_in_at_the_slot_start_is_on_time_and_a_minute_later_is_late() -> None:
    assert scorecards.outcome_of(facts(S.CHECKED_IN, checked_in_at=SLOT)) is Outcome.ON_TIME
    early = facts(S.CHECKED_IN, checked_in_at=SLOT - 90 * MINUTE)
    assert scorecards.outcome_of(early) is Outcome.ON_TIME
    late = facts(S.CHECKED_IN, checked_in_at=SLOT + MINUTE)
    assert scorecards.outcome_of(late) is Outcome.LATE


def test_cancellations_are_late_or_not_as_their_answer_said_and_confirmed_is_pending() -> None:
    assert scorecards.outcome_of(facts(S.CANCELLED)) is Outcome.CANCELLED
    assert scorecards.outcome_of(facts(S.CANCELLED, cancelled_late=True)) is (
        Outcome.LATE_CANCELLATION
    )
    assert scorecards.outcome_of(facts(S.NO_SHOW)) is Outcome.NO_SHOW
    assert scorecards.outcome_of(facts(S.CONFIRMED)) is Outcome.PENDING
    with pytest.raises(ValueError, match="no booking"):
        scorecards.outcome_of(facts(S.REJECTED))


# ------------------------------------------------------------------------- figures ----


def test_a_month_of_one_carrier_counted_by_hand() -> None:
    figures = card_of(
        facts(S.CHECKED_IN, checked_in_at=SLOT - MINUTE),  # on time
        facts(S.CHECKED_IN, checked_in_at=SLOT, moves=2, late_moves=1),  # on time, moved twice
        facts(S.CHECKED_IN, checked_in_at=SLOT + 10 * MINUTE),  # late
        facts(S.NO_SHOW),
        facts(S.CANCELLED, moves=1),
        facts(S.CANCELLED, cancelled_late=True, moves=1, late_moves=1),
        facts(S.CONFIRMED),
    )
    assert figures == {
        "carrier_id": "acme",
        "hub_id": "test-hub",
        "month": "2027-03",
        "bookings": 7,
        "on_time_check_ins": 2,
        "late_check_ins": 1,
        "no_shows": 1,
        "cancellations": 1,
        "late_cancellations": 1,
        "pending": 1,
        "reschedules": 4,
        "late_reschedules": 2,
        "on_time_rate": 2 / 3,  # of the 3 check-ins
        "no_show_rate": 1 / 4,  # of the 4 that were due to come and settled
        "late_cancellation_rate": 1 / 7,
        "late_reschedule_rate": 2 / 4,
    }


def test_rates_without_anything_to_divide_by_are_none_not_zero() -> None:
    figures = card_of(facts(S.CONFIRMED), facts(S.CANCELLED))
    assert figures["on_time_rate"] is None
    assert figures["no_show_rate"] is None
    assert figures["late_reschedule_rate"] is None
    assert figures["late_cancellation_rate"] == 0.0


def test_each_carrier_gets_its_own_row_in_carrier_order() -> None:
    cards = scorecards.scorecards(
        hub(), MARCH, [facts(S.NO_SHOW, "zeta"), facts(S.NO_SHOW, "acme"), facts(S.NO_SHOW, "zeta")]
    )
    assert [(c.carrier_id, c.bookings) for c in cards] == [("acme", 1), ("zeta", 2)]


def test_a_booking_belongs_to_the_month_of_its_slot_on_the_hubs_calendar() -> None:
    berlin = hub()
    start, end = scorecards.month_bounds(berlin.zone, MARCH)
    # March in Berlin: from 1 March 00:00 CET (UTC+1) to 1 April 00:00 CEST (UTC+2)
    assert start == datetime(2027, 2, 28, 23, tzinfo=UTC)
    assert end == datetime(2027, 3, 31, 22, tzinfo=UTC)
    december = scorecards.month_bounds(berlin.zone, date(2027, 12, 1))
    assert december[1] == datetime(2027, 12, 31, 23, tzinfo=UTC)  # the year turns
    # 31 March 22:30 UTC is 1 April 00:30 in Berlin: April's, not March's
    with pytest.raises(ValueError, match="not of 2027-03"):
        scorecards.scorecards(berlin, MARCH, [facts(S.NO_SHOW, slot_start=end + 30 * MINUTE)])
    [card] = scorecards.scorecards(berlin, MARCH, [facts(S.NO_SHOW, slot_start=start)])
    assert card.bookings == 1


@pytest.mark.parametrize("text", ["2027-3", "27-03", "2027-13", "2027-00", "march", "2027_03"])
def test_a_month_that_is_not_yyyy_mm_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        scorecards.parse_month(text)


statuses = st.sampled_from([S.CONFIRMED, S.CANCELLED, S.CHECKED_IN, S.NO_SHOW])


@st.composite
def month_bookings(draw: st.DrawFn) -> list[BookingFacts]:
    start, end = scorecards.month_bounds(hub().zone, MARCH)
    minutes = int((end - start).total_seconds() // 60) - 1
    found = []
    for _ in range(draw(st.integers(0, 40))):
        slot = start + timedelta(minutes=draw(st.integers(0, minutes)))
        status = draw(statuses)
        moves = draw(st.integers(0, 3))
        found.append(
            BookingFacts(
                carrier_id=draw(st.sampled_from(["acme", "bolt", "cargo"])),
                slot_start=slot,
                status=status,
                checked_in_at=slot + timedelta(minutes=draw(st.integers(-120, 120)))
                if status is S.CHECKED_IN
                else None,
                cancelled_late=draw(st.booleans()),
                moves=moves,
                late_moves=draw(st.integers(0, moves)),
            )
        )
    return found


@given(month_bookings())
def test_every_booking_of_the_month_is_in_exactly_one_outcome(bookings: list[BookingFacts]) -> None:
    cards = scorecards.scorecards(hub(), MARCH, bookings)
    buckets = ("on_time_check_ins", "late_check_ins", "no_shows", "cancellations")
    buckets += ("late_cancellations", "pending")
    for card in cards:
        figures = card.figures()
        mine = [b for b in bookings if b.carrier_id == card.carrier_id]
        assert figures["bookings"] == len(mine) == sum(figures[k] for k in buckets)  # type: ignore[misc]
        assert figures["reschedules"] == sum(b.moves for b in mine)
        assert 0 <= figures["late_reschedules"] <= figures["reschedules"]  # type: ignore[operator]
        for rate in ("on_time_rate", "no_show_rate", "late_cancellation_rate"):
            assert figures[rate] is None or 0 <= figures[rate] <= 1  # type: ignore[operator]
    assert sum(card.bookings for card in cards) == len(bookings)


# -------------------------------------------------------------------- no-show rule ----

NOW = datetime(2027, 3, 20, 12, tzinfo=UTC)


def recent(*statuses: BookingStatus, days_ago: float = 1) -> list[tuple[datetime, BookingStatus]]:
    return [(NOW - timedelta(days=days_ago), s) for s in statuses]


def test_above_the_rate_with_enough_bookings_the_horizon_is_limited() -> None:
    # 2 of 6 settled bookings missed: 33 % > 20 %
    limit = scorecards.horizon_limit(
        RULE, recent(*[S.CHECKED_IN] * 4, S.NO_SHOW, S.NO_SHOW), now=NOW
    )
    assert limit is not None and (limit.no_shows, limit.arrivals_due) == (2, 6)
    assert limit.rate == pytest.approx(1 / 3)


def test_at_the_rate_or_with_too_few_bookings_nothing_is_limited() -> None:
    at_rate = recent(*[S.CHECKED_IN] * 4, S.NO_SHOW)  # 1 of 5: 20 %, not above
    assert scorecards.horizon_limit(RULE, at_rate, now=NOW) is None
    too_few = recent(S.NO_SHOW, S.NO_SHOW, S.NO_SHOW, S.CHECKED_IN)  # 4 < min_bookings 5
    assert scorecards.horizon_limit(RULE, too_few, now=NOW) is None


def test_only_settled_bookings_of_the_trailing_window_count() -> None:
    # cancelled and still confirmed ones say nothing about showing up
    unsettled = recent(*[S.NO_SHOW] * 2, *[S.CHECKED_IN] * 3, *[S.CANCELLED] * 9, S.CONFIRMED)
    limit = scorecards.horizon_limit(RULE, unsettled, now=NOW)
    assert limit is not None and (limit.no_shows, limit.arrivals_due) == (2, 5)
    # the same no-shows 31 days ago are outside the 30-day window: too few left
    old = recent(*[S.NO_SHOW] * 2, days_ago=31) + recent(*[S.CHECKED_IN] * 3)
    assert scorecards.horizon_limit(RULE, old, now=NOW) is None
    # a slot that starts at `now` or later is not in the trailing window
    future = recent(*[S.NO_SHOW] * 5, days_ago=0)
    assert scorecards.horizon_limit(RULE, future, now=NOW) is None


def test_the_refusal_says_the_rate_the_limit_and_how_far_the_carrier_may_book() -> None:
    ruled = hub(no_show_rule=RULE.model_dump())
    limit = scorecards.horizon_limit(RULE, recent(*[S.CHECKED_IN] * 4, *[S.NO_SHOW] * 2), now=NOW)
    assert limit is not None
    within = NOW + timedelta(days=2)
    assert not scorecards.may_limit(ruled, within, NOW)
    assert scorecards.beyond_limit(ruled, limit, "acme", within, NOW) is None
    beyond = within + timedelta(hours=1)
    assert scorecards.may_limit(ruled, beyond, NOW)
    message = scorecards.beyond_limit(ruled, limit, "acme", beyond, NOW)
    assert message is not None
    assert "2 of its last 6" in message and "33.3%" in message and "20.0%" in message
    assert "at most 2 days ahead" in message
    assert not scorecards.may_limit(hub(), beyond + timedelta(days=9), NOW)  # no rule, no limit


def test_the_rule_in_the_catalogue_is_checked() -> None:
    assert hub(no_show_rule=RULE.model_dump()).no_show_rule == RULE
    for wrong in ({"max_no_show_rate": 1.5, "limited_horizon_days": 2}, {"max_no_show_rate": 0.2}):
        with pytest.raises(ValidationError):
            hub(no_show_rule=wrong)
