"""Standing bookings' rules (services/booking/series_rules.py): which RRULEs a series may
use, its occurrences in the hub's wall time across DST, and the horizon's windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.booking.series import SeriesRejectionReason
from services.booking import series_rules
from services.booking.series_rules import Problem, occurrences, parse

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2027, 3, 15, 7, 0)  # local wall time, two weeks before DST starts


def rule(text: str, dtstart: datetime = MONDAY):
    parsed = parse(text, dtstart)
    assert not isinstance(parsed, Problem), parsed
    return parsed


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_mon_wed_fri_at_seven_local() -> None:
    found = occurrences(
        rule("FREQ=WEEKLY;BYDAY=MO,WE,FR"), BERLIN, utc(2027, 3, 14), utc(2027, 3, 21)
    )
    assert [o.local_start for o in found] == [datetime(2027, 3, d, 7, 0) for d in (15, 17, 19)]
    assert [o.slot_start for o in found] == [utc(2027, 3, d, 6) for d in (15, 17, 19)]
    assert found[0].reference("weekly") == "weekly:20270315T0700"


def test_the_wall_time_is_kept_across_dst_in_spring_and_autumn() -> None:
    """Berlin: CET (UTC+1) to CEST (UTC+2) on 28 March 2027, back on 31 October."""
    spring = occurrences(rule("FREQ=DAILY"), BERLIN, utc(2027, 3, 26), utc(2027, 3, 30))
    assert [(o.local_start.hour, o.slot_start.hour) for o in spring] == [
        (7, 6), (7, 6), (7, 5), (7, 5)
    ]  # fmt: skip
    autumn = occurrences(
        rule("FREQ=DAILY", datetime(2027, 10, 29, 7)), BERLIN, utc(2027, 10, 29), utc(2027, 11, 2)
    )
    assert [o.slot_start.hour for o in autumn] == [5, 5, 6, 6]
    assert {o.local_start.hour for o in autumn} == {7}


def test_a_wall_time_in_the_spring_gap_is_read_with_the_offset_before_it() -> None:
    [gap] = occurrences(
        rule("FREQ=DAILY;COUNT=1", datetime(2027, 3, 28, 2, 30)),
        BERLIN,
        utc(2027, 3, 27),
        utc(2027, 3, 29),
    )
    assert gap.slot_start == utc(2027, 3, 28, 1, 30)  # 03:30 CEST


def test_count_and_until_end_the_series() -> None:
    counted = occurrences(rule("FREQ=DAILY;COUNT=3"), BERLIN, utc(2027, 3, 1), utc(2027, 6, 1))
    assert len(counted) == 3
    until = occurrences(
        rule("FREQ=WEEKLY;UNTIL=20270329T070000"), BERLIN, utc(2027, 3, 1), utc(2027, 6, 1)
    )
    assert [o.local_start.day for o in until] == [15, 22, 29]


def test_windows_that_follow_each_other_give_each_occurrence_once() -> None:
    """The horizon moves in steps: (booked_until, horizon] windows never overlap, so an
    occurrence falls in exactly one of them."""
    parsed = rule("FREQ=WEEKLY;BYDAY=MO,WE,FR")
    start = utc(2027, 3, 14)
    whole = occurrences(parsed, BERLIN, start, start + timedelta(days=60))
    stepped = []
    edge = start
    for hours in (1, 30, 47, 5, 200, 13, 1000, 144):
        nxt = edge + timedelta(hours=hours)
        stepped += occurrences(parsed, BERLIN, edge, nxt)
        edge = nxt
    assert stepped == [o for o in whole if o.slot_start <= edge]
    assert len(stepped) == len({o.slot_start for o in stepped}) > 10


@given(
    steps=st.lists(st.integers(1, 24 * 9), min_size=1, max_size=30),
    days=st.sets(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), min_size=1),
    hour=st.integers(0, 23),
)
def test_any_steps_of_the_horizon_decide_every_occurrence_exactly_once(steps, days, hour) -> None:
    parsed = rule(f"FREQ=WEEKLY;BYDAY={','.join(sorted(days))}", datetime(2027, 3, 1, hour, 0))
    start = utc(2027, 2, 28)
    edge, stepped = start, []
    for hours in steps:
        nxt = edge + timedelta(hours=hours)
        stepped += occurrences(parsed, BERLIN, edge, nxt)
        edge = nxt
    assert stepped == occurrences(parsed, BERLIN, start, edge)
    assert len({o.slot_start for o in stepped}) == len(stepped)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("FREQ=HOURLY", SeriesRejectionReason.RRULE_TOO_FREQUENT),
        ("FREQ=MINUTELY;INTERVAL=30", SeriesRejectionReason.RRULE_TOO_FREQUENT),
        ("FREQ=WEEKLY;BYHOUR=7", SeriesRejectionReason.INVALID_RRULE),
        ("RRULE:FREQ=WEEKLY", SeriesRejectionReason.INVALID_RRULE),
        ("BYDAY=MO", SeriesRejectionReason.INVALID_RRULE),
        ("FREQ=WEEKLY;BYDAY=XX", SeriesRejectionReason.INVALID_RRULE),
        ("FREQ=WEEKLY;;", SeriesRejectionReason.INVALID_RRULE),
        ("FREQ=DAILY;FREQ=WEEKLY", SeriesRejectionReason.INVALID_RRULE),
        ("FREQ=DAILY;COUNT=0", SeriesRejectionReason.INVALID_RRULE),
        ("FREQ=DAILY;COUNT=2;UNTIL=20270401", SeriesRejectionReason.INVALID_RRULE),
        ("FREQ=DAILY;INTERVAL=100000", SeriesRejectionReason.INVALID_RRULE),
        ("FREQ=DAILY;UNTIL=20270401T000000Z", SeriesRejectionReason.INVALID_RRULE),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", SeriesRejectionReason.NO_OCCURRENCES),
        ("FREQ=DAILY;UNTIL=20270101", SeriesRejectionReason.NO_OCCURRENCES),
    ],
)
def test_a_rule_a_series_cannot_use_is_refused_with_a_reason(text: str, reason) -> None:
    problem = parse(text, MONDAY)
    assert isinstance(problem, Problem)
    assert problem.reason is reason and problem.message


def test_dtstart_is_a_wall_time_without_an_offset() -> None:
    problem = parse("FREQ=DAILY", MONDAY.replace(tzinfo=UTC))
    assert isinstance(problem, Problem) and problem.reason is SeriesRejectionReason.INVALID_RRULE


def test_a_rule_that_never_occurs_is_refused_quickly() -> None:
    """30 February, daily: iterated to the year 9999 it would take seconds."""
    problem = parse("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", MONDAY)
    assert isinstance(problem, Problem)
    assert problem.reason is SeriesRejectionReason.NO_OCCURRENCES
    assert series_rules.FIRST_WITHIN.days < 2000


def test_the_next_occurrence_after_an_instant_and_none_once_the_rule_has_ended() -> None:
    parsed = rule("FREQ=WEEKLY;BYDAY=MO,FR;COUNT=3")
    first = series_rules.next_after(parsed, BERLIN, utc(2027, 3, 1))
    assert first is not None and first.local_start == MONDAY
    # at the occurrence itself: the next one (after, not at)
    second = series_rules.next_after(parsed, BERLIN, first.slot_start)
    assert second is not None and second.local_start == datetime(2027, 3, 19, 7, 0)
    third = series_rules.next_after(parsed, BERLIN, second.slot_start)
    assert third is not None and third.slot_start == utc(2027, 3, 22, 6)
    assert series_rules.next_after(parsed, BERLIN, third.slot_start) is None  # COUNT=3
    # across the spring change: the wall time kept
    daily = rule("FREQ=DAILY")
    across = series_rules.next_after(daily, BERLIN, utc(2027, 3, 28, 0))
    assert across is not None and across.slot_start == utc(2027, 3, 28, 5)
