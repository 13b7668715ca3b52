"""What the booking HTTP API reads and answers: request bodies and views of bookings and
slots (the OpenAPI document is generated from these)."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import HTTPException, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from contracts.booking import Consignment
from contracts.carriers import forwarded_id, forwarded_source
from contracts.common import Identifier
from contracts.envelope import Payload
from services.booking import store
from services.runtime.auth import Principal, Role, forbid

M = TypeVar("M", bound=BaseModel)

# (payload, hub id, time) -> published; returns the command's CloudEvents id
PublishCommand = Callable[[Payload, str, datetime], Awaitable[str | None]]
SOURCE = "microhub/http-api"  # the CloudEvents source of the commands it publishes


class UnknownCarrier(Exception):
    """The carrier a command is published for has no commands topic: it is not in the
    carrier registry, or its topics were not applied (``microhub carriers apply``)."""

    def __init__(self, carrier_id: str, topic: str) -> None:
        super().__init__(carrier_id, topic)
        self.carrier_id, self.topic = carrier_id, topic


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
    bookable: bool = Field(
        description="Within the hub's booking horizon, a dock free and not closed: a "
        "request for it would be confirmed now (capacity permitting)."
    )
    closure_id: str | None = Field(
        default=None,
        description="The operator's closure in force over this slot, if any: a request or "
        "a move into it is refused `hub_closed` (POST /v1/hubs/{hub}/closures).",
    )
    closure_reason: str | None = Field(default=None, description="That closure's reason.")


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


def acting_carrier(caller: Principal, carrier_id: str | None, what: str) -> str:
    """The carrier a command from HTTP is for: a carrier key's own (naming another is a
    ``403``), or the one an admin key names (required: ``422``); other keys may not
    ``what`` (e.g. "request bookings") at all."""
    if caller.role is Role.CARRIER:
        if carrier_id not in (None, caller.scope):
            raise forbid(f"this key books for carrier {caller.scope}, not {carrier_id}")
        assert caller.scope is not None  # a carrier key names its carrier (parse_scope)
        return caller.scope
    if not caller.is_admin():
        raise forbid(f"only carriers (and admins) can {what}")
    if carrier_id is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "carrier_id is required for admin keys"
        )
    return carrier_id


def command_from(model: type[M], **fields: Any) -> M:
    """The command ``model`` of a request's fields; a field the command refuses is a
    ``422`` with pydantic's errors."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors(include_url=False)
        ) from exc


async def answer_to_command(
    sessions: Any, *, carrier_id: str | None, event_id: str, seconds: float
) -> list[dict[str, Any]] | None:
    """The events that answered the command this API published as ``event_id``, or None
    when not decided within ``seconds``. The booking consumer's inbox keeps them with the
    command: a carrier's (``carrier_id``) under the id and source the gateway forwarded it
    with; an operator's (``carrier_id`` None: a closure names no carrier) under the API's
    own."""
    inbox = store.inbox.c
    if carrier_id is None:
        source, command_id = SOURCE, event_id
    else:
        source, command_id = (
            forwarded_source(carrier_id),
            forwarded_id(carrier_id, SOURCE, event_id),
        )
    query = select(inbox.answer).where(
        inbox.source == source, inbox.event_id == command_id, inbox.answer.is_not(None)
    )
    deadline = asyncio.get_running_loop().time() + max(seconds, 0.0)
    while True:
        async with sessions() as session:
            answer = (await session.execute(query)).scalars().first()
        if answer or asyncio.get_running_loop().time() >= deadline:
            return answer or None
        await asyncio.sleep(0.05)


async def visible_booking(sessions: Any, booking_id: str, caller: Principal) -> store.StoredBooking:
    """The booking, if the caller may see it: its carrier's key, or an operator's of its
    hub. ``404`` otherwise, not ``403``: another carrier's booking ids are not confirmed
    to exist."""
    async with sessions() as session:
        booking = await store.get_booking(session, booking_id)
    if booking is None or not (
        caller.may_act_as_carrier(booking.carrier_id) or caller.may_operate_hub(booking.hub_id)
    ):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no booking {booking_id} visible to this key"
        )
    return booking


async def queue(
    publish: PublishCommand, payload: Payload, hub_id: str, time: datetime, *, timeout: float
) -> str | None:
    """Publish a command from HTTP (its CloudEvents id), or answer ``503``: nothing was
    changed and the caller may retry (a booking's id is deterministic, so a retry is an
    idempotent resend). A carrier's command goes onto its own topic: one that never
    comes back names the registry, where a carrier without a topic is missing."""
    try:
        return await asyncio.wait_for(publish(payload, hub_id, time), timeout=timeout)
    except UnknownCarrier as exc:  # no retry would help: say so now, not after the timeout
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            {
                "reason": "unknown_carrier",
                "message": f"carrier {exc.carrier_id} has no commands topic ({exc.topic}): "
                "it is not in the carrier registry, or its topics were not applied yet "
                "(an admin: PUT /v1/admin/carriers/{id}, then `microhub carriers apply`); "
                "nothing was booked or changed",
            },
        ) from exc
    except Exception as exc:  # any broker failure means: not accepted
        carrier = getattr(payload, "carrier_id", None)
        hint = (
            f" (if it persists: is carrier {carrier} in the carrier registry? its commands "
            "topic is made from there)"
            if carrier and isinstance(exc, TimeoutError | asyncio.TimeoutError)
            else ""
        )
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the command could not be queued ({type(exc).__name__}); nothing was booked "
            f"or changed, retry in a few seconds{hint}",
            headers={"Retry-After": "5"},
        ) from exc
