"""HTTP API of the booking service, for carriers without Kafka, operators and admins.

Commands from HTTP go through Kafka like every other command (same partition per hub,
same ordering, same decision code); the API waits briefly for the decision so that most
callers get it in the response, and always returns where to poll for it.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import AwareDatetime

from contracts.booking import (
    BookingCancellationRequested,
    BookingRequested,
    BookingRescheduleRequested,
    CheckInReported,
)
from contracts.envelope import Payload
from services.booking import api_hubs as hub_routes
from services.booking import domain, store
from services.booking.answers import refusal, reschedule_refusal
from services.booking.api_models import (
    Accepted,
    BookingRequestBody,
    BookingView,
    PublishCommand,
    RescheduleBody,
    acting_carrier,
    answer_to_command,
    command_from,
    queue,
    view,
    visible_booking,
)
from services.booking.domain import BookingStatus
from services.runtime.auth import Principal, Role, forbid
from services.runtime.http import strict_body
from services.runtime.uow import UnitsOfWork

# Offsets beyond this are refused (422) rather than handed to the database, where a
# number past its integer range is an error (500); any offset past the end is an empty page.
MAX_OFFSET = 2**31 - 1


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
    sessions = units.sessions  # reads; every write goes through a unit of work

    async def send(payload: Payload, hub_id: str, time: datetime) -> str | None:
        """Publish a command (its id), or answer 503 (api_models.queue)."""
        return await queue(publish, payload, hub_id, time, timeout=publish_timeout)

    def location(booking_id: str) -> str:
        return f"/v1/bookings/{booking_id}"

    async def wait_for(
        booking_id: str, seconds: float, done: Callable[[store.StoredBooking], bool]
    ):
        deadline = asyncio.get_running_loop().time() + min(max(seconds, 0.0), max_wait_seconds)
        while True:
            async with sessions() as session:
                booking = await store.get_booking(session, booking_id)
            if booking is not None and done(booking):
                return booking
            if asyncio.get_running_loop().time() >= deadline:
                return booking
            await asyncio.sleep(0.05)

    async def owned(booking_id: str, caller: Principal) -> store.StoredBooking:
        return await visible_booking(sessions, booking_id, caller)

    async def carriers_own(
        booking_id: str, caller: Principal, verb: str, rule: Callable[..., Any]
    ) -> store.StoredBooking:
        """The booking, if the caller is its carrier and the service's own ``rule`` lets
        it ``verb`` now: asked before the command is sent, so a refusal is a 409 now."""
        booking = await owned(booking_id, caller)
        if not caller.may_act_as_carrier(booking.carrier_id):
            raise forbid(f"only the booking's carrier can {verb} it")
        problem = rule(booking.state, hub_id=booking.hub_id)
        if problem is not None:
            raise HTTPException(
                status.HTTP_409_CONFLICT, {"reason": problem[0].value, "message": problem[1]}
            )
        return booking

    @api.post(
        "/v1/bookings",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        tags=["bookings"],
    )
    async def request_booking(
        body: BookingRequestBody,
        strict: Annotated[BookingRequestBody, Depends(strict_body(BookingRequestBody))],
        caller: Caller,
        response: Response,
        wait: Annotated[
            float, Query(ge=0, le=max_wait_seconds, description="seconds to wait for the decision")
        ] = 2.0,
    ) -> Accepted:
        """Request a booking. ``202`` with the outcome when it is decided within ``wait``
        seconds (else ``pending``: poll ``Location``); ``409`` ``idempotency_conflict``
        when the reference was used for another request, or ``reason`` and ``message``
        of a refusal before the decision (``horizon_limited_no_shows``); ``422`` for a
        body that is not the contract (strict JSON types) or breaks a rule it cannot
        express, with the ``reason`` a Kafka client would get."""
        body = strict  # what the contract says (FastAPI's own parsing of it is lax)
        carrier_id = acting_carrier(caller, body.carrier_id, "request bookings")
        command = command_from(
            BookingRequested,
            carrier_id=carrier_id,
            carrier_reference=body.carrier_reference,
            hub_id=body.hub_id,
            slot_start=body.slot_start,
            consignment=body.consignment,
        )
        booking_id = domain.booking_id_for(carrier_id, body.carrier_reference)
        sent_at = datetime.now(UTC)
        refused = refusal(command, sent_at)
        if refused is not None:  # what the service would answer, and store nothing of
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                {"reason": str(refused.reason), "message": refused.message},
            )
        async with sessions() as session:
            existing = await store.get_booking(session, booking_id)
        answer = None
        if existing is None:
            event_id = await send(command, command.hub_id, sent_at)
            answer = await answer_to(event_id, carrier_id, wait) if event_id else None
            for event in answer or ():  # refused before a decision: no booking is stored
                if event["type"] == "microhub.booking.command_rejected.v2":
                    detail = {k: event["data"][k] for k in ("reason", "message")}
                    raise HTTPException(status.HTTP_409_CONFLICT, detail)
        booking = existing or await wait_for(booking_id, wait if answer else 0, lambda _: True)
        if booking is not None and booking.request_fingerprint != domain.fingerprint(command):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                {
                    "reason": "idempotency_conflict",
                    "message": f"reference {body.carrier_reference!r} was already used for a "
                    f"different request (booking {booking.id} is {booking.status.value}); "
                    "use a new reference for a new booking",
                    "booking_id": booking.id,
                },
            )
        response.headers["Location"] = location(booking_id)
        return Accepted(
            booking_id=booking_id,
            status=booking.status.value if booking else "pending",
            location=location(booking_id),
            booking=view(booking) if booking else None,
        )

    @api.get("/v1/bookings/{booking_id}", response_model=BookingView, tags=["bookings"])
    async def get_booking(booking_id: str, caller: Caller) -> BookingView:
        return view(await owned(booking_id, caller))

    @api.get("/v1/bookings", response_model=list[BookingView], tags=["bookings"])
    async def list_bookings(
        caller: Caller,
        hub_id: str | None = None,
        booking_status: Annotated[BookingStatus | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        order: Annotated[
            Literal["oldest", "newest"], Query(description="by slot start")
        ] = "oldest",
        slot_from: Annotated[
            AwareDatetime | None, Query(description="slots starting at or after")
        ] = None,
        slot_before: Annotated[AwareDatetime | None, Query(description="slots before")] = None,
        carrier: Annotated[
            str | None, Query(alias="carrier_id", description="one carrier's (admins)")
        ] = None,
    ) -> list[BookingView]:
        carrier_id: str | None = carrier if caller.is_admin() else None
        hubs: list[str] | None = [hub_id] if hub_id else None
        if caller.role is Role.CARRIER:
            carrier_id = caller.scope
        elif caller.role is Role.OPERATOR:
            if hub_id not in (None, caller.scope):
                raise forbid(f"this key operates hub {caller.scope}, not {hub_id}")
            assert caller.scope is not None  # an operator key names its hub (parse_scope)
            hubs = [caller.scope]
        elif not caller.is_admin():
            raise forbid("city officials read reports, not bookings")
        async with sessions() as session:
            found = await store.list_bookings(
                session,
                carrier_id=carrier_id,
                hub_ids=hubs,
                status=booking_status.value if booking_status else None,
                limit=limit,
                offset=offset,
                newest_first=order == "newest",
                slot_from=slot_from,
                slot_before=slot_before,
            )
        return [view(b) for b in found]

    async def _command(
        booking: store.StoredBooking, payload: Payload, wait: float, target: BookingStatus
    ):
        sent_at = datetime.now(UTC)
        await send(payload, booking.hub_id, sent_at)
        return await wait_for(booking.id, wait, lambda b: b.status is target)

    @api.delete(
        "/v1/bookings/{booking_id}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        tags=["bookings"],
    )
    async def cancel_booking(
        booking_id: str,
        caller: Caller,
        reason: Annotated[str | None, Query(max_length=500)] = None,
        wait: Annotated[float, Query(ge=0, le=max_wait_seconds)] = 2.0,
    ) -> Accepted:
        booking = await carriers_own(booking_id, caller, "cancel", domain.check_cancellation)
        command = BookingCancellationRequested(
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            reason=reason,
        )
        after = await _command(booking, command, wait, BookingStatus.CANCELLED)
        return Accepted(
            booking_id=booking_id,
            status=after.status.value,
            location=location(booking_id),
            booking=view(after),
        )

    @api.post(
        "/v1/bookings/{booking_id}/check-in",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        tags=["bookings"],
    )
    async def check_in(
        booking_id: str,
        caller: Caller,
        wait: Annotated[float, Query(ge=0, le=max_wait_seconds)] = 2.0,
    ) -> Accepted:
        booking = await owned(booking_id, caller)
        async with sessions() as session:
            hub = await store.get_hub(session, booking.hub_id)
        # the service's own rule, asked before the command is sent: a refusal is a 409 now
        problem = domain.check_check_in(
            booking.state, hub, hub_id=booking.hub_id, now=datetime.now(UTC)
        )
        if problem is not None:
            raise HTTPException(
                status.HTTP_409_CONFLICT, {"reason": problem[0].value, "message": problem[1]}
            )
        command = CheckInReported(
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
        )
        after = await _command(booking, command, wait, BookingStatus.CHECKED_IN)
        return Accepted(
            booking_id=booking_id,
            status=after.status.value,
            location=location(booking_id),
            booking=view(after),
        )

    async def answer_to(
        event_id: str, carrier_id: str, seconds: float
    ) -> list[dict[str, Any]] | None:
        wait = min(seconds, max_wait_seconds)
        return await answer_to_command(
            sessions, carrier_id=carrier_id, event_id=event_id, seconds=wait
        )

    @api.patch(
        "/v1/bookings/{booking_id}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        tags=["bookings"],
    )
    async def reschedule(
        booking_id: str,
        body: RescheduleBody,
        strict: Annotated[RescheduleBody, Depends(strict_body(RescheduleBody))],
        caller: Caller,
        wait: Annotated[float, Query(ge=0, le=max_wait_seconds)] = 2.0,
    ) -> Accepted:
        """Move the booking to the slot starting at ``slot_start`` (same hub), atomically:
        ``202`` with the booking in its new slot (or ``pending``: poll ``Location``);
        ``409`` with ``reason``, ``message`` and, when the new slot is the problem,
        ``next_slots``, and the booking keeps its slot; ``422`` for a body that is not the
        contract or a slot no hub's horizon reaches. After the hub's cancellation cutoff
        the move is made and counted late (``late`` in ``microhub.booking.rescheduled.v1``)."""
        body = strict  # what the contract says (FastAPI's own parsing of it is lax)
        booking = await carriers_own(booking_id, caller, "reschedule", domain.check_reschedule)
        command = BookingRescheduleRequested(
            carrier_id=booking.carrier_id,
            carrier_reference=booking.carrier_reference,
            hub_id=booking.hub_id,
            slot_start=body.slot_start,
            reason=body.reason,
        )
        sent_at = datetime.now(UTC)
        refused = reschedule_refusal(command, sent_at)
        if refused is not None:  # what the service would answer, and store nothing of
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                {"reason": refused.reason, "message": refused.message},
            )
        event_id = await send(command, booking.hub_id, sent_at)
        answer = await answer_to(event_id, booking.carrier_id, wait) if event_id else None
        for event in answer or ():
            if event["type"] != "microhub.booking.rescheduled.v1":
                data = event["data"]
                detail = {"reason": data["reason"], "message": data["message"]}
                if "next_slots" in data:  # the new slot was the problem: the offers
                    detail |= {"slot_start": data["slot_start"], "next_slots": data["next_slots"]}
                raise HTTPException(status.HTTP_409_CONFLICT, detail)
        async with sessions() as session:
            after = await store.get_booking(session, booking_id)
        assert after is not None  # bookings are never deleted
        return Accepted(
            booking_id=booking_id,
            status=after.status.value if answer else "pending",
            location=location(booking_id),
            booking=view(after),
        )

    api.include_router(hub_routes.router(units=units, principal=principal))

    return api
