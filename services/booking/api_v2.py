"""``POST /v2/bookings``: a booking request with per-stop time windows and pickups
(``microhub.booking.requested.v2``) for carriers without Kafka.

Like ``POST /v1/bookings`` (api.py) the request goes through Kafka with the same
publisher, is decided by the same code, and the caller waits briefly for the decision.
Its rules are the v2 request's: the consignment's (the stops add up to
``parcel_count``, unique ``stop_id``s) and the windows' (each ends after it starts and
after the slot starts); a body that breaks one is a ``422`` with the ``reason`` a Kafka
client would get in ``command_rejected.v2``, and nothing is sent.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoint's annotations,
# which name this router's own arguments (max_wait_seconds)
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.booking import BookingRequestedV2, ConsignmentV2
from contracts.common import Identifier
from services.booking import domain, requests_v2, store
from services.booking.answers import refusal
from services.booking.api_models import (
    Accepted,
    PublishCommand,
    acting_carrier,
    command_from,
    queue,
    view,
)
from services.runtime.auth import Principal
from services.runtime.http import strict_body
from services.runtime.uow import UnitsOfWork


class BookingRequestBodyV2(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier_reference: Identifier
    hub_id: Identifier
    slot_start: AwareDatetime
    consignment: ConsignmentV2
    carrier_id: Identifier | None = Field(
        default=None, description="Defaults to the carrier of the API key; admins must set it."
    )
    wait: bool = Field(
        default=False,
        description="When the slot is full, wait on its waiting list (the booking reads "
        "'waitlisted', then 'offered': accept with POST /v1/bookings/{id}/offer/accept) "
        "instead of being rejected.",
    )


def conflict(booking: store.StoredBooking, reference: str) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT,
        {
            "reason": "idempotency_conflict",
            "message": f"reference {reference!r} was already used for a different request "
            f"(booking {booking.id} is {booking.status.value}); use a new reference for a "
            "new booking",
            "booking_id": booking.id,
        },
    )


def router(
    *,
    units: UnitsOfWork,
    publish: PublishCommand,
    principal: Callable[..., Awaitable[Principal]],
    max_wait_seconds: float = 10.0,
    publish_timeout: float = 10.0,
) -> APIRouter:
    api = APIRouter()
    Caller = Annotated[Principal, Depends(principal)]
    sessions = units.sessions

    async def decided(booking_id: str, seconds: float) -> store.StoredBooking | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(seconds, 0.0), max_wait_seconds)
        while True:
            async with sessions() as session:
                booking = await store.get_booking(session, booking_id)
            if booking is not None or loop.time() >= deadline:
                return booking
            await asyncio.sleep(0.05)

    @api.post(
        "/v2/bookings",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        tags=["bookings"],
    )
    async def request_booking_v2(
        body: BookingRequestBodyV2,
        strict: Annotated[BookingRequestBodyV2, Depends(strict_body(BookingRequestBodyV2))],
        caller: Caller,
        response: Response,
        wait: Annotated[
            float, Query(ge=0, le=max_wait_seconds, description="seconds to wait for the decision")
        ] = 2.0,
    ) -> Accepted:
        """Request a booking whose stops may have time windows and may be pickups.
        ``202`` with the outcome when it is decided within ``wait`` seconds (else
        ``pending``: poll ``Location``); ``409`` ``idempotency_conflict`` when the
        reference was used for another request; ``422`` for a body that is not the
        contract or breaks a rule it cannot express (``parcel_count_mismatch``,
        ``duplicate_stop_id``, ``window_backwards``, ``window_before_slot``, or a slot
        beyond every horizon), with the ``reason`` a Kafka client would get."""
        body = strict  # what the contract says (FastAPI's own parsing of it is lax)
        carrier_id = acting_carrier(caller, body.carrier_id, "request bookings")
        command = command_from(
            BookingRequestedV2,
            carrier_id=carrier_id,
            carrier_reference=body.carrier_reference,
            hub_id=body.hub_id,
            slot_start=body.slot_start,
            consignment=body.consignment,
            wait=body.wait,
        )
        sent_at = datetime.now(UTC)
        # what the service would answer (and store nothing of): the windows first, then
        # the rules of the v1 request it is decided as
        windows = requests_v2.check_windows(command)
        refused = refusal(requests_v2.as_v1(command), sent_at)
        if windows is not None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                {"reason": str(windows[0]), "message": windows[1]},
            )
        if refused is not None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                {"reason": str(refused.reason), "message": refused.message},
            )
        booking_id = domain.booking_id_for(carrier_id, body.carrier_reference)
        fingerprint = domain.fingerprint(requests_v2.as_v1(command))
        async with sessions() as session:
            existing = await store.get_booking(session, booking_id)
        if existing is not None and existing.request_fingerprint != fingerprint:
            raise conflict(existing, body.carrier_reference)
        # sent even when the booking exists: a resend with other windows is the same
        # request, and booking publishes its stop terms again (as over Kafka)
        await queue(publish, command, command.hub_id, sent_at, timeout=publish_timeout)
        booking = existing or await decided(booking_id, wait)
        if booking is not None and booking.request_fingerprint != fingerprint:
            raise conflict(booking, body.carrier_reference)
        where = f"/v1/bookings/{booking_id}"
        response.headers["Location"] = where
        return Accepted(
            booking_id=booking_id,
            status=booking.status.value if booking else "pending",
            location=where,
            booking=view(booking) if booking else None,
        )

    return api
