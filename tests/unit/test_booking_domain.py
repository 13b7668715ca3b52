"""The booking rules, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.booking import BookingRequested, RejectionReason
from contracts.booking.events import CommandRejectionReason
from services.booking import domain, slot_grid
from services.booking.domain import BookingState, BookingStatus, HubConfig, SlotUsage
from tests.support.carrier import consignment
from tests.support.hubs import hub_config

# Monday 2027-03-01 (Berlin is UTC+1 in March until the 28th)
MONDAY = datetime(2027, 3, 1, tzinfo=UTC)
NOW = MONDAY + timedelta(hours=5)


def hub(**overrides) -> HubConfig:
    return HubConfig.model_validate(hub_config(**overrides))


def request(slot: datetime, *, volume_m3: float = 2.0, ref: str = "r1") -> BookingRequested:
    return BookingRequested(
        carrier_id="acme",
        carrier_reference=ref,
        hub_id="test-hub",
        slot_start=slot,
        consignment=consignment(volume_m3=volume_m3),
    )


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall-clock time in the first week of March 2027, as UTC."""
    return datetime(2027, 3, day, hour - 1, minute, tzinfo=UTC)


def check(slot: datetime, *, usage: SlotUsage = SlotUsage(), h: HubConfig | None = None, **kw):
    return domain.check_request(h or hub(**kw), request(slot), now=NOW, usage=usage)


def test_a_slot_on_the_grid_inside_opening_hours_is_accepted() -> None:
    assert check(local(2, 9)) is None


@pytest.mark.parametrize(
    ("slot", "reason"),
    [
        (local(2, 9, 30), RejectionReason.NOT_ON_GRID),
        (local(2, 5), RejectionReason.OUTSIDE_OPENING_HOURS),
        (local(1, 5), RejectionReason.OUTSIDE_OPENING_HOURS),
        (NOW - timedelta(hours=1), RejectionReason.OUTSIDE_OPENING_HOURS),  # 05:00 local
        (local(1, 6), RejectionReason.IN_THE_PAST),  # == now: not in the future
        (NOW + timedelta(days=20), RejectionReason.BEYOND_HORIZON),
    ],
)
def test_slot_rules(slot: datetime, reason: RejectionReason) -> None:
    rejection = check(slot)
    assert rejection is not None and rejection.reason is reason
    assert rejection.message


def test_closed_weekday_and_closed_date() -> None:
    weekdays_only = {d: ["06:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    assert (
        check(local(6, 9), opening_hours=weekdays_only).reason is RejectionReason.HUB_CLOSED
    )  # Saturday
    closed = check(local(3, 9), closed_dates=[date(2027, 3, 3)])
    assert closed.reason is RejectionReason.HUB_CLOSED and "2027-03-03" in closed.message


def test_split_opening_hours_have_their_own_grids() -> None:
    h = hub(opening_hours={"tue": ["06:00-11:30", "13:15-18:00"]}, slot_minutes=45)
    assert check(local(2, 6, 45), h=h) is None
    assert check(local(2, 13, 15), h=h) is None
    assert check(local(2, 14, 0), h=h) is None
    assert check(local(2, 13, 0), h=h).reason is RejectionReason.OUTSIDE_OPENING_HOURS
    assert check(local(2, 10, 30), h=h) is None  # 06:00 + 6 x 45 min, ends 11:15
    # 11:15 is on the grid but would end at 12:00, after the 11:30 break
    assert check(local(2, 11, 15), h=h).reason is RejectionReason.OUTSIDE_OPENING_HOURS
    assert check(local(2, 10, 45), h=h).reason is RejectionReason.NOT_ON_GRID


def test_capacity_rules() -> None:
    h = hub(docks_per_slot=2, volume_per_slot_m3=10)
    assert check(local(2, 9), usage=SlotUsage(1, 8000), h=h) is None
    assert check(local(2, 9), usage=SlotUsage(2, 0), h=h).reason is RejectionReason.DOCKS_FULL
    assert check(local(2, 9), usage=SlotUsage(1, 8001), h=h).reason is RejectionReason.VOLUME_FULL
    too_big = domain.check_request(
        h, request(local(2, 9), volume_m3=10.5), now=NOW, usage=SlotUsage()
    )
    assert too_big.reason is RejectionReason.CONSIGNMENT_TOO_LARGE


def test_volume_is_counted_in_litres_rounded_up() -> None:
    assert domain.litres(2.0) == 2000
    assert domain.litres(0.0001) == 1
    assert domain.litres(0.1 + 0.2) == 300  # no float drift


def test_next_fitting_slots_skip_full_and_closed_slots() -> None:
    h = hub(docks_per_slot=1, opening_hours={"tue": ["06:00-09:00"], "wed": ["06:00-08:00"]})
    usage = {local(2, 7): SlotUsage(1, 0)}
    offers = domain.next_fitting_slots(h, after=local(2, 6), now=NOW, volume_l=1000, usage=usage)
    assert [o.start for o in offers] == [local(2, 8), local(3, 6), local(3, 7)]
    assert all(o.free_docks == 1 for o in offers)


def test_next_fitting_slots_is_empty_when_nothing_could_ever_fit() -> None:
    h = hub(volume_per_slot_m3=1)
    assert domain.next_fitting_slots(h, after=NOW, now=NOW, volume_l=5000, usage={}) == []


def test_grid_follows_daylight_saving_time() -> None:
    h = hub(opening_hours={"sun": ["06:00-08:00"], "mon": ["06:00-08:00"]})
    # 2027-03-28 is the switch to CEST (UTC+2): 06:00 local is 04:00 UTC on Monday the 29th
    assert slot_grid.slots_on(h, date(2027, 3, 29))[0] == datetime(2027, 3, 29, 4, tzinfo=UTC)
    assert slot_grid.slots_on(h, date(2027, 3, 22))[0] == datetime(2027, 3, 22, 5, tzinfo=UTC)


def test_booking_ids_are_deterministic_per_carrier_reference() -> None:
    assert domain.booking_id_for("acme", "r1") == domain.booking_id_for("acme", "r1")
    assert domain.booking_id_for("acme", "r1") != domain.booking_id_for("acme", "r2")
    assert domain.booking_id_for("acme", "r1") != domain.booking_id_for("acm", "er1")


def test_fingerprint_tells_same_content_from_different() -> None:
    assert domain.fingerprint(request(local(2, 9))) == domain.fingerprint(request(local(2, 9)))
    assert domain.fingerprint(request(local(2, 9))) != domain.fingerprint(request(local(2, 10)))
    # the same instant written in another offset is the same request
    same_instant = request(local(2, 9).astimezone(hub().zone))
    assert domain.fingerprint(same_instant) == domain.fingerprint(request(local(2, 9)))


def test_cancellation_cutoff() -> None:
    h = hub(cancellation_cutoff_minutes=120)
    slot = local(2, 12)
    assert not domain.cancellation_is_late(h, slot, slot - timedelta(minutes=121))
    assert domain.cancellation_is_late(h, slot, slot - timedelta(minutes=119))


def state(status: BookingStatus, slot: datetime = local(2, 12)) -> BookingState:
    return BookingState(status, "test-hub", slot, slot + timedelta(hours=1))


def test_cancellation_and_check_in_rules() -> None:
    assert (
        domain.check_cancellation(None, hub_id="test-hub")[0]
        is CommandRejectionReason.UNKNOWN_BOOKING
    )
    assert domain.check_cancellation(state(BookingStatus.CONFIRMED), hub_id="test-hub") is None
    assert (
        domain.check_cancellation(state(BookingStatus.CONFIRMED), hub_id="x")[0]
        is CommandRejectionReason.WRONG_HUB
    )
    assert (
        domain.check_cancellation(state(BookingStatus.CHECKED_IN), hub_id="test-hub")[0]
        is CommandRejectionReason.NOT_CONFIRMED
    )
    h = hub()
    slot = local(2, 12)
    too_early = domain.check_check_in(
        state(BookingStatus.CONFIRMED), h, hub_id="test-hub", now=slot - timedelta(hours=3)
    )
    assert too_early[0] is CommandRejectionReason.TOO_EARLY
    assert (
        domain.check_check_in(state(BookingStatus.CONFIRMED), h, hub_id="test-hub", now=slot)
        is None
    )
    assert domain.check_check_in(state(BookingStatus.NO_SHOW), h, hub_id="test-hub", now=slot)[
        0
    ] is (CommandRejectionReason.NOT_CONFIRMED)


def test_no_show_after_slot_end_plus_grace() -> None:
    booking = state(BookingStatus.CONFIRMED)
    grace = timedelta(minutes=30)
    assert not domain.is_no_show(booking, now=booking.slot_end + grace, grace=grace)
    assert domain.is_no_show(
        booking, now=booking.slot_end + grace + timedelta(seconds=1), grace=grace
    )
    assert not domain.is_no_show(
        state(BookingStatus.CHECKED_IN), now=booking.slot_end + 2 * grace, grace=grace
    )


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            {"city": {"id": "c", "name": "C", "country": "DE", "timezone": "Nowhere/Land"}},
            "Nowhere/Land",
        ),
        ({"opening_hours": {"mon": ["10:00-09:00"]}}, "must be after"),
        ({"opening_hours": {"monday": ["06:00-09:00"]}}, "unknown weekday"),
        ({"opening_hours": {"mon": ["06:00-10:00", "09:00-12:00"]}}, "overlap"),
        ({"opening_hours": {"mon": ["6 to 9"]}}, "HH:MM-HH:MM"),
        ({"docks_per_slot": 0}, "docks_per_slot"),
    ],
)
def test_hub_configuration_errors_say_what_is_wrong(change: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        HubConfig.model_validate(hub_config(**change))
    assert fragment in str(info.value)


# ------------------------------------------------------------------ reschedules ------


def test_only_a_confirmed_booking_at_the_named_hub_may_be_moved() -> None:
    assert domain.check_reschedule(state(BookingStatus.CONFIRMED), hub_id="test-hub") is None
    refused = {
        None: CommandRejectionReason.UNKNOWN_BOOKING,
        state(BookingStatus.REJECTED): CommandRejectionReason.UNKNOWN_BOOKING,
        state(BookingStatus.CANCELLED): CommandRejectionReason.NOT_CONFIRMED,
        state(BookingStatus.CHECKED_IN): CommandRejectionReason.NOT_CONFIRMED,
        state(BookingStatus.NO_SHOW): CommandRejectionReason.NOT_CONFIRMED,
    }
    for booking, reason in refused.items():
        problem = domain.check_reschedule(booking, hub_id="test-hub")
        assert problem is not None and problem[0] is reason, booking
    wrong_hub = domain.check_reschedule(state(BookingStatus.CONFIRMED), hub_id="other")
    assert wrong_hub is not None and wrong_hub[0] is CommandRejectionReason.WRONG_HUB


def test_the_new_slot_passes_the_rules_of_a_request() -> None:
    """check_request and a reschedule's new slot share check_slot: grid, past, horizon,
    size and capacity, the same reasons in the same order."""
    h = hub(docks_per_slot=1)
    assert domain.check_slot(h, local(2, 9), 2.0, now=NOW, usage=SlotUsage()) is None
    cases = [
        (local(2, 9, 30), SlotUsage(), 2.0, RejectionReason.NOT_ON_GRID),
        (local(1, 6), SlotUsage(), 2.0, RejectionReason.IN_THE_PAST),
        (NOW + timedelta(days=20), SlotUsage(), 2.0, RejectionReason.BEYOND_HORIZON),
        (local(2, 9), SlotUsage(), 11.0, RejectionReason.CONSIGNMENT_TOO_LARGE),
        (local(2, 9), SlotUsage(1, 1000), 2.0, RejectionReason.DOCKS_FULL),
    ]
    for slot, usage, volume, reason in cases:
        rejection = domain.check_slot(h, slot, volume, now=NOW, usage=usage)
        assert rejection is not None and rejection.reason is reason, (slot, reason)
    roomy = hub(docks_per_slot=5)
    volume = domain.check_slot(roomy, local(2, 9), 2.0, now=NOW, usage=SlotUsage(1, 9000))
    assert volume is not None and volume.reason is RejectionReason.VOLUME_FULL
    for slot, *_ in cases[:3]:  # a request with the same slot is refused for the same reason
        as_request = check(slot, h=h)
        as_move = domain.check_slot(h, slot, 2.0, now=NOW, usage=SlotUsage())
        assert as_request is not None and as_move is not None
        assert as_request.reason is as_move.reason


def test_a_move_after_the_cutoff_before_the_slot_it_leaves_is_late() -> None:
    h = hub(cancellation_cutoff_minutes=120)
    old = local(2, 12)
    assert not domain.reschedule_is_late(h, old, old - timedelta(minutes=121))
    assert domain.reschedule_is_late(h, old, old - timedelta(minutes=119))
    # after the slot it leaves began (not a no-show yet): late, still allowed
    assert domain.reschedule_is_late(h, old, old + timedelta(minutes=10))


def test_offers_for_a_move_leave_out_the_slot_the_booking_has() -> None:
    h = hub(docks_per_slot=1, opening_hours={"tue": ["06:00-10:00"]})
    usage = {local(2, 7): SlotUsage(1, 0)}
    offers = domain.next_fitting_slots(
        h, after=local(2, 6), now=NOW, volume_l=1000, usage=usage, skip=local(2, 8)
    )
    assert [o.start for o in offers][:2] == [local(2, 9), local(9, 6)]  # not 07 (full), 08


HUBS_FOR_GRID = [
    hub(),
    hub(slot_minutes=45, opening_hours={"mon": ["07:15-19:00"], "tue": ["06:00-10:00"]}),
    hub(closed_dates=["2027-03-02"]),
]


@settings(max_examples=300)
@given(
    which=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 7 * 24 * 4), st.sampled_from([0, 60, -300])),
        min_size=1,
        max_size=30,
    )
)
def test_a_kept_grid_answer_is_the_hubs_own_for_that_slot(
    which: list[tuple[int, int, int]],
) -> None:
    """The grid's answers are kept per hub object and slot: asked again, in any order,
    under any offset, each is what that hub's rules say of that slot."""
    for index, quarter, offset in which:
        h = HUBS_FOR_GRID[index]
        slot = (MONDAY + timedelta(minutes=15 * quarter)).astimezone(
            timezone(timedelta(minutes=offset))
        )
        assert slot_grid.grid_problem(h, slot) == slot_grid._grid_problem(h, slot)
