"""What a committed batch adds to the decision and event counters (/metrics): counted per
label set, with a rejection's reason code and none for a confirmation."""

from __future__ import annotations

from contracts.booking import BookingConfirmed, BookingRejected, RejectionReason
from services.runtime import metrics


def _value(counter: object, *labels: str) -> float:
    return counter.labels(*labels)._value.get()  # type: ignore[attr-defined]


def test_a_batch_counts_each_outcome_and_reason_once_per_decision() -> None:
    full = ("rejected", RejectionReason.DOCKS_FULL.value)
    before = {
        "full": _value(metrics.DECISIONS, *full),
        "confirmed": _value(metrics.DECISIONS, "confirmed", ""),
        "events": _value(metrics.EVENTS, "booking", BookingRejected.event_type),
    }
    batch = [
        BookingRejected.model_construct(reason=RejectionReason.DOCKS_FULL),
        BookingConfirmed.model_construct(),
        BookingRejected.model_construct(reason=RejectionReason.DOCKS_FULL),
    ]

    metrics.committed("booking", batch)

    assert _value(metrics.DECISIONS, *full) == before["full"] + 2
    assert _value(metrics.DECISIONS, "confirmed", "") == before["confirmed"] + 1
    assert _value(metrics.EVENTS, "booking", BookingRejected.event_type) == before["events"] + 2


def test_other_services_events_are_counted_but_are_no_booking_decisions() -> None:
    before = _value(metrics.DECISIONS, "confirmed", "")
    events = _value(metrics.EVENTS, "reporting", BookingConfirmed.event_type)

    metrics.committed("reporting", [BookingConfirmed.model_construct()])

    assert _value(metrics.DECISIONS, "confirmed", "") == before
    assert _value(metrics.EVENTS, "reporting", BookingConfirmed.event_type) == events + 1
