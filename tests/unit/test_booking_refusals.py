"""The booking rules checked before a decision (services/booking/domain.py and
services/booking/answers.py): what the schema cannot say, and dates no arithmetic
should be asked to handle. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.booking import (
    BookingCommandRejectedV2,
    BookingRejected,
    BookingRequested,
    BookingRequestedV2,
    CheckInReported,
    CommandRejectionReasonV2,
    ConsignmentV2,
    DeliveryStopV2,
    RejectionReason,
    StopKind,
)
from contracts.envelope import new_event
from contracts.hubs import MAX_BOOKING_HORIZON_DAYS, HubConfig
from services.booking import domain
from services.booking.answers import ANSWER_TYPES, BookingAnswers, refusal
from tests.support.carrier import consignment

NOW = datetime(2027, 3, 1, 8, tzinfo=UTC)


def request(slot: datetime | str = NOW + timedelta(days=1), **cons) -> BookingRequested:
    return BookingRequested(
        carrier_id="acme",
        carrier_reference="r1",
        hub_id="test-hub",
        slot_start=slot,
        consignment=consignment(**cons),
    )


def test_stops_must_carry_parcel_count_parcels() -> None:
    command = request()
    assert domain.check_consignment(command.consignment) is None
    data = command.consignment.model_dump()
    data["parcel_count"] = 5
    reason, message = domain.check_consignment(type(command.consignment)(**data))
    assert reason is CommandRejectionReasonV2.PARCEL_COUNT_MISMATCH
    assert "carry 4 parcels but parcel_count is 5" in message


def test_stop_ids_must_be_unique() -> None:
    data = consignment(stops=3, parcels=3)
    data["stops"][2]["stop_id"] = data["stops"][0]["stop_id"]
    command = request()
    problem = domain.check_consignment(type(command.consignment).model_validate(data))
    assert problem is not None
    assert problem[0] is CommandRejectionReasonV2.DUPLICATE_STOP_ID
    assert "'s0'" in problem[1]


@pytest.mark.parametrize(
    ("slot", "reason"),
    [
        ("9999-12-31T23:00:00+00:00", RejectionReason.BEYOND_HORIZON),
        ("9999-12-31T23:30:00-05:00", RejectionReason.BEYOND_HORIZON),  # year 10000 in UTC
        ("0001-01-01T00:30:00+05:00", RejectionReason.IN_THE_PAST),  # year 0 in UTC
        (NOW + timedelta(days=MAX_BOOKING_HORIZON_DAYS + 2), RejectionReason.BEYOND_HORIZON),
        (NOW - timedelta(days=2), RejectionReason.IN_THE_PAST),
    ],
)
def test_a_slot_far_from_the_request_is_refused_without_date_arithmetic(slot, reason) -> None:
    rejection = domain.check_slot_distance(request(slot), now=NOW)
    assert rejection is not None and rejection.reason is reason
    refused = refusal(request(slot), NOW)
    assert isinstance(refused, BookingRejected) and refused.reason is reason
    assert refused.next_slots == []


def test_a_slot_within_reach_is_left_to_the_hub() -> None:
    for slot in (NOW + timedelta(days=MAX_BOOKING_HORIZON_DAYS), NOW - timedelta(hours=3)):
        assert domain.check_slot_distance(request(slot), now=NOW) is None


def test_every_hub_horizon_is_within_the_far_limit() -> None:
    field = HubConfig.model_fields["booking_horizon_days"]
    assert any(getattr(m, "le", None) == MAX_BOOKING_HORIZON_DAYS for m in field.metadata)


def test_a_time_at_the_edge_of_the_calendar_is_clock_skew() -> None:
    far = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    assert not domain.time_is_usable(far)
    assert domain.time_is_usable(NOW)
    answers = BookingAnswers()
    for payload in (request(), CheckInReported(carrier_id="a", carrier_reference="r", hub_id="h")):
        event = new_event(payload, source="carrier/a", subject="h", time=far)
        answer = answers.refuse(event)
        assert answer is not None
        assert answer.payload.reason == "clock_skew"


def test_the_answer_to_a_failure_is_internal_error_and_says_what_to_do() -> None:
    event = new_event(request(), source="carrier/a", subject="test-hub", time=NOW)
    answer = BookingAnswers().failed(event, ValueError("boom"))
    assert answer is not None and answer.key == "test-hub"
    payload = answer.payload
    assert isinstance(payload, BookingCommandRejectedV2)
    assert payload.reason == "internal_error"
    assert payload.booking_id == domain.booking_id_for("acme", "r1")
    assert "ValueError" in payload.message and "boom" not in payload.message
    assert "new id" in payload.message


def test_no_shows_answer_no_command() -> None:
    assert "microhub.booking.no_show.v1" not in ANSWER_TYPES
    assert "microhub.booking.command_rejected.v2" in ANSWER_TYPES


def test_a_v2_request_keeps_the_v1_rules_and_its_stop_terms_answer_nothing() -> None:
    v1 = request()
    stops = [
        DeliveryStopV2(stop_id="s0", location=s.location, parcels=s.parcels, kind=StopKind.PICKUP)
        for s in v1.consignment.stops
    ]  # every stop called s0, the parcels one short of parcel_count
    v2 = BookingRequestedV2(
        carrier_id="acme",
        carrier_reference="r1",
        hub_id="test-hub",
        slot_start=v1.slot_start,
        consignment=ConsignmentV2(
            parcel_count=v1.consignment.parcel_count + 1,
            weight_kg=v1.consignment.weight_kg,
            volume_m3=v1.consignment.volume_m3,
            stops=stops,
            depot=v1.consignment.depot,
        ),
    )
    answer = BookingAnswers().refuse(new_event(v2, source="carrier/a", subject="h", time=NOW))
    assert answer is not None and isinstance(answer.payload, BookingCommandRejectedV2)
    assert answer.payload.reason == "parcel_count_mismatch"
    assert answer.payload.command_type == "microhub.booking.requested.v2"
    assert "microhub.booking.stop_terms.v1" not in ANSWER_TYPES
