"""What the booking HTTP API reads and answers: request bodies and views of bookings and
slots (the OpenAPI document is generated from these)."""

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.booking import Consignment
from contracts.common import Identifier
from services.booking import store


class BookingRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier_reference: Identifier
    hub_id: Identifier
    slot_start: AwareDatetime
    consignment: Consignment
    carrier_id: Identifier | None = Field(
        default=None, description="Defaults to the carrier of the API key; admins must set it."
    )


class RescheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_start: AwareDatetime = Field(description="The start of the slot to move it to.")
    reason: str | None = Field(default=None, max_length=500)


class BookingView(BaseModel):
    booking_id: str
    carrier_id: str
    carrier_reference: str
    hub_id: str
    status: str
    slot_start: datetime
    slot_end: datetime
    reason: str | None = None
    message: str | None = None
    next_slots: list[dict[str, Any]] = Field(default_factory=list)
    decided_at: datetime
    updated_at: datetime


class Accepted(BaseModel):
    booking_id: str
    status: str = Field(description="'pending' until decided; then the booking's status")
    location: str
    booking: BookingView | None = None


class SlotView(BaseModel):
    start: datetime
    end: datetime
    docks_total: int
    docks_free: int
    volume_total_m3: float
    volume_free_m3: float
    bookable: bool


def view(booking: store.StoredBooking) -> BookingView:
    outcome = booking.outcome.get("data", {})
    return BookingView(
        booking_id=booking.id,
        carrier_id=booking.carrier_id,
        carrier_reference=booking.carrier_reference,
        hub_id=booking.hub_id,
        status=booking.status.value,
        slot_start=booking.slot_start,
        slot_end=booking.slot_end,
        reason=booking.reason,
        message=booking.message,
        next_slots=outcome.get("next_slots", []),
        decided_at=booking.decided_at,
        updated_at=booking.updated_at,
    )
