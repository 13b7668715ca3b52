"""Contracts of the booking domain: carriers' commands and the booking service's events."""

from contracts.booking.commands import (
    BookingCancellationRequested,
    BookingRequested,
    BookingRescheduleRequested,
    CheckInReported,
    Consignment,
    DeliveryStop,
)
from contracts.booking.events import (
    BookingCancelled,
    BookingCommandRejected,
    BookingCommandRejectedV2,
    BookingConfirmed,
    BookingNoShow,
    BookingRejected,
    BookingRescheduled,
    BookingRescheduleRejected,
    CommandRejectionReasonV2,
    ConsignmentCheckedIn,
    HubSummary,
    RejectionReason,
    SlotOffer,
)

__all__ = [
    "BookingCancellationRequested",
    "BookingCancelled",
    "BookingCommandRejected",
    "BookingCommandRejectedV2",
    "BookingConfirmed",
    "BookingNoShow",
    "BookingRejected",
    "BookingRequested",
    "BookingRescheduleRejected",
    "BookingRescheduleRequested",
    "BookingRescheduled",
    "CheckInReported",
    "CommandRejectionReasonV2",
    "Consignment",
    "ConsignmentCheckedIn",
    "DeliveryStop",
    "HubSummary",
    "RejectionReason",
    "SlotOffer",
]
