"""Contracts of the booking domain: carriers' commands and the booking service's events."""

from contracts.booking.commands import (
    BookingCancellationRequested,
    BookingRequested,
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
    "CheckInReported",
    "CommandRejectionReasonV2",
    "Consignment",
    "ConsignmentCheckedIn",
    "DeliveryStop",
    "HubSummary",
    "RejectionReason",
    "SlotOffer",
]
