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
    BookingConfirmed,
    BookingNoShow,
    BookingRejected,
    ConsignmentCheckedIn,
    HubSummary,
    RejectionReason,
    SlotOffer,
)

__all__ = [
    "BookingCancellationRequested",
    "BookingCancelled",
    "BookingCommandRejected",
    "BookingConfirmed",
    "BookingNoShow",
    "BookingRejected",
    "BookingRequested",
    "CheckInReported",
    "Consignment",
    "ConsignmentCheckedIn",
    "DeliveryStop",
    "HubSummary",
    "RejectionReason",
    "SlotOffer",
]
