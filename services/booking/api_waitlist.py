"""HTTP for a request that waits on a full slot's waiting list (waiting_list.py): the
offer of a freed slot accepted or declined, as ``waitlist_offer_accept.v1`` and
``waitlist_offer_decline.v1`` are over Kafka. A request asks to wait with ``"wait":
true`` on ``POST /v2/bookings``; its booking reads ``waitlisted``, then ``offered`` (with
the offer's deadline in the carrier's events and webhooks), then ``confirmed`` or
``waitlist_ended``.

The commands go the HTTP API's one way (the carrier's own topic, the gateway), and the
answer is read from the booking consumer's inbox, as for a reschedule."""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations,
# which name the router's own ``max_wait_seconds``
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from contracts.booking.waitlist import WaitlistOfferAccept, WaitlistOfferDecline
from services.booking import store
from services.booking.api_models import (
    Accepted,
    PublishCommand,
    answer_to_command,
    queue,
    view,
    visible_booking,
)
from services.runtime.auth import Principal, forbid
from services.runtime.uow import UnitsOfWork

ANSWERED = {"microhub.booking.confirmed.v1", "microhub.booking.waitlist_ended.v1"}


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

    async def answer_offer(
        booking_id: str, caller: Principal, accept: bool, reason: str | None, wait: float
    ) -> Accepted:
        booking = await visible_booking(sessions, booking_id, caller)
        if not caller.may_act_as_carrier(booking.carrier_id):  # the hub's operator
            raise forbid("only the request's carrier answers an offer")
        command: WaitlistOfferAccept | WaitlistOfferDecline = (
            WaitlistOfferAccept(
                carrier_id=booking.carrier_id,
                carrier_reference=booking.carrier_reference,
                hub_id=booking.hub_id,
            )
            if accept
            else WaitlistOfferDecline(
                carrier_id=booking.carrier_id,
                carrier_reference=booking.carrier_reference,
                hub_id=booking.hub_id,
                reason=reason,
            )
        )
        event_id = await queue(
            publish, command, booking.hub_id, datetime.now(UTC), timeout=publish_timeout
        )
        answer = (
            await answer_to_command(
                sessions,
                carrier_id=booking.carrier_id,
                event_id=event_id,
                seconds=min(wait, max_wait_seconds),
            )
            if event_id
            else None
        )
        for event in answer or ():
            if event["type"] not in ANSWERED:  # no_offer, offer_expired, wrong_hub
                data = event["data"]
                raise HTTPException(
                    status.HTTP_409_CONFLICT, {"reason": data["reason"], "message": data["message"]}
                )
        async with sessions() as session:
            after = await store.get_booking(session, booking_id)
        assert after is not None  # bookings are never deleted
        return Accepted(
            booking_id=booking_id,
            status=after.status.value if answer else "pending",
            location=f"/v1/bookings/{booking_id}",
            booking=view(after),
        )

    @api.post(
        "/v1/bookings/{booking_id}/offer/accept",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        tags=["bookings"],
    )
    async def accept_offer(
        booking_id: str,
        caller: Caller,
        wait: Annotated[float, Query(ge=0, le=max_wait_seconds)] = 2.0,
    ) -> Accepted:
        """Take the slot offered to this waiting request before the offer expires:
        ``202`` with the booking ``confirmed`` (or ``pending``: poll ``Location``);
        ``409`` with ``reason`` ``no_offer`` or ``offer_expired``."""
        return await answer_offer(booking_id, caller, True, None, wait)

    @api.post(
        "/v1/bookings/{booking_id}/offer/decline",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        tags=["bookings"],
    )
    async def decline_offer(
        booking_id: str,
        caller: Caller,
        reason: Annotated[str | None, Query(max_length=500)] = None,
        wait: Annotated[float, Query(ge=0, le=max_wait_seconds)] = 2.0,
    ) -> Accepted:
        """Decline the slot offered to this waiting request, or leave the waiting list
        before any offer: ``202`` with the booking ``waitlist_ended``; the slot goes to
        the next in line; ``409`` with ``reason`` when there is nothing to decline."""
        return await answer_offer(booking_id, caller, False, reason, wait)

    return api
