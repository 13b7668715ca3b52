"""HTTP API of standing bookings (series.py), for carriers without Kafka: ``POST
/v1/series``, ``GET /v1/series/{id}``, ``DELETE /v1/series/{id}`` (the rest of a series).

Like every HTTP command, a series command goes through Kafka (same partition as the
hub's other commands, same decision code); the route waits briefly for the command's own
answer, which the booking consumer keeps in its inbox, and returns it."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, NaiveDatetime
from sqlalchemy import select

from contracts.booking import Consignment
from contracts.booking.series import (
    SeriesCancelRequested,
    SeriesReference,
    SeriesRejectionReason,
    SeriesRequested,
    series_id_for,
)
from contracts.common import Identifier
from services.booking import series, store
from services.booking.api_models import (
    PublishCommand,
    acting_carrier,
    answer_to_command,
    command_from,
    queue,
)
from services.runtime.auth import Principal, forbid
from services.runtime.http import strict_body
from services.runtime.uow import UnitsOfWork


class SeriesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier_reference: SeriesReference
    hub_id: Identifier
    rrule: str = Field(min_length=1, max_length=500, examples=["FREQ=WEEKLY;BYDAY=MO,WE,FR"])
    dtstart: NaiveDatetime = Field(description="the first occurrence, the hub's wall time")
    consignment: Consignment
    carrier_id: Identifier | None = Field(
        default=None, description="Defaults to the carrier of the API key; admins must set it."
    )


class SeriesView(BaseModel):
    series_id: str
    status: str = Field(description="'pending' until decided; then 'active' or 'cancelled'")
    location: str
    carrier_id: str | None = None
    carrier_reference: str | None = None
    hub_id: str | None = None
    rrule: str | None = None
    dtstart: str | None = None
    booked_until: datetime | None = None
    answer: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The events that answered this request (series and occurrences), "
        "as {type, data}",
    )


def location(series_id: str) -> str:
    return f"/v1/series/{series_id}"


def view(row: Any, answer: list[dict[str, Any]] | None = None) -> SeriesView:
    return SeriesView(
        series_id=row.id,
        status=row.status,
        location=location(row.id),
        carrier_id=row.carrier_id,
        carrier_reference=row.carrier_reference,
        hub_id=row.hub_id,
        rrule=row.rule,
        dtstart=row.dtstart,
        booked_until=row.booked_until,
        answer=[{"type": e["type"], "data": e["data"]} for e in answer or ()],
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

    async def send(payload: Any, hub_id: str) -> str | None:
        return await queue(publish, payload, hub_id, datetime.now(UTC), timeout=publish_timeout)

    async def answer_to(
        carrier_id: str, event_id: str | None, seconds: float
    ) -> list[dict[str, Any]] | None:
        if event_id is None:
            return None
        wait = min(seconds, max_wait_seconds)
        return await answer_to_command(
            sessions, carrier_id=carrier_id, event_id=event_id, seconds=wait
        )

    async def find(series_id: str) -> Any:
        async with sessions() as session:
            query = select(store.series).where(store.series.c.id == series_id)
            return (await session.execute(query)).first()

    async def owned(series_id: str, caller: Principal) -> Any:
        row = await find(series_id)
        if row is None or not (
            caller.may_act_as_carrier(row.carrier_id) or caller.may_operate_hub(row.hub_id)
        ):  # 404, not 403: another carrier's series ids are not confirmed to exist
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no series {series_id} visible to this key"
            )
        return row

    def refused(answer: list[dict[str, Any]] | None) -> None:
        for event in answer or ():
            if event["type"] == "microhub.booking.series_rejected.v1":
                data = event["data"]
                code = (
                    status.HTTP_409_CONFLICT
                    if data["reason"] == SeriesRejectionReason.IDEMPOTENCY_CONFLICT
                    else status.HTTP_422_UNPROCESSABLE_CONTENT
                )
                raise HTTPException(code, {"reason": data["reason"], "message": data["message"]})

    @api.post(
        "/v1/series",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=SeriesView,
        tags=["series"],
    )
    async def request_series(
        body: SeriesBody,
        strict: Annotated[SeriesBody, Depends(strict_body(SeriesBody))],
        caller: Caller,
        response: Response,
        wait: Annotated[float, Query(ge=0, le=max_wait_seconds)] = 2.0,
    ) -> SeriesView:
        """Book a standing booking: ``202`` with the series and the answers (the series'
        and one per occurrence booked now: ``confirmed`` or ``rejected`` with a reason),
        or ``pending`` (poll ``Location``); ``422`` with ``reason`` for a rule that is
        refused or an unknown hub; ``409`` ``idempotency_conflict`` when the reference was
        used for another series."""
        body = strict
        carrier_id = acting_carrier(caller, body.carrier_id, "book series")
        command = command_from(
            SeriesRequested,
            carrier_id=carrier_id,
            carrier_reference=body.carrier_reference,
            hub_id=body.hub_id,
            rrule=body.rrule,
            dtstart=body.dtstart,
            consignment=body.consignment,
        )
        problem = series.refusal(command)  # what the service would answer
        if problem is not None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                {"reason": problem.reason.value, "message": problem.message},
            )
        series_id = series_id_for(carrier_id, body.carrier_reference)
        answer = await answer_to(carrier_id, await send(command, command.hub_id), wait)
        refused(answer)
        response.headers["Location"] = location(series_id)
        row = await find(series_id)
        if row is None:
            return SeriesView(series_id=series_id, status="pending", location=location(series_id))
        return view(row, answer)

    @api.get("/v1/series/{series_id}", response_model=SeriesView, tags=["series"])
    async def get_series(series_id: str, caller: Caller) -> SeriesView:
        row = await owned(series_id, caller)
        return view(row, [row.outcome] + ([row.cancellation] if row.cancellation else []))

    @api.delete(
        "/v1/series/{series_id}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=SeriesView,
        tags=["series"],
    )
    async def cancel_series(
        series_id: str,
        caller: Caller,
        reason: Annotated[str | None, Query(max_length=500)] = None,
        wait: Annotated[float, Query(ge=0, le=max_wait_seconds)] = 2.0,
    ) -> SeriesView:
        """Cancel the rest of a series: every confirmed occurrence whose slot has not
        begun, and no further ones. ``202`` with the answers (``series_cancelled`` and one
        ``cancelled`` per occurrence); the same again changes nothing."""
        row = await owned(series_id, caller)
        if not caller.may_act_as_carrier(row.carrier_id):
            raise forbid("only the series' carrier can cancel it")
        command = SeriesCancelRequested(
            carrier_id=row.carrier_id,
            carrier_reference=row.carrier_reference,
            hub_id=row.hub_id,
            reason=reason,
        )
        answer = await answer_to(row.carrier_id, await send(command, row.hub_id), wait)
        refused(answer)
        after = await find(series_id)
        result = view(after, answer)
        if answer is None:
            result.status = "pending"
        return result

    return api
