"""HTTP routes of hub closures (issue 16): a hub's operator closes a range of its slots
and lifts the closure again. Like every command from HTTP, a closure goes through Kafka
on the hub's partition (decided in order with the hub's bookings: closures.py); the
route waits briefly for the decision and always says where to look."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from contracts.booking import HubClosureLiftRequested, HubClosureRequested
from contracts.envelope import Payload
from services.booking import store
from services.booking.api_models import answer_to_command, queue
from services.booking.http_commands import publish_command
from services.runtime.auth import Principal, forbid
from services.runtime.http import strict_body
from services.runtime.uow import UnitsOfWork

PublishCommand = Callable[[Payload, str, datetime], Awaitable[str | None]]


def internal_publisher(broker: Any, topic: str) -> PublishCommand:
    """Publish an operator's command on booking's commands topic (the full name), keyed by
    its hub. Carriers' commands from HTTP take their carrier's topic and the gateway
    (http_commands.py); an operator's names no carrier, and the gateway forwards no such
    command from a carrier's topic, so it goes here: the API's principal needs Write on
    this topic for it (infra/acls.yaml)."""

    async def publish(payload: Payload, hub_id: str, time: datetime) -> str:
        return await publish_command(broker, payload, topic, hub_id, time)

    return publish


class ClosureBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    starts_at: AwareDatetime = Field(alias="from", description="First instant closed.")
    ends_at: AwareDatetime = Field(alias="to", description="First instant open again.")
    reason: str = Field(min_length=1, max_length=500, description="Why (a breakdown, a holiday).")


class Closure(BaseModel):
    closure_id: str
    hub_id: str
    status: str = Field(description="'pending' until decided; 'closed', 'lifted' or 'rejected'")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    reason: str | None = None
    closed_by: str | None = None
    affected_bookings: int | None = None
    lifted_by: str | None = None
    lift_reason: str | None = None
    location: str


def _view(hub_id: str, closure_id: str, row: Any | None, status_: str = "pending") -> Closure:
    location = f"/v1/hubs/{hub_id}/closures/{closure_id}"
    if row is None:
        return Closure(closure_id=closure_id, hub_id=hub_id, status=status_, location=location)
    declared, lifted = row.declared["data"], (row.lifted or {}).get("data", {})
    return Closure(
        closure_id=closure_id,
        hub_id=hub_id,
        status="lifted" if row.lifted else "closed",
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        reason=row.reason,
        closed_by=declared["closed_by"],
        affected_bookings=declared["affected_bookings"],
        lifted_by=lifted.get("lifted_by"),
        lift_reason=lifted.get("reason"),
        location=location,
    )


def router(
    *,
    units: UnitsOfWork,
    publish: PublishCommand,
    principal: Callable[..., Awaitable[Principal]],
    max_wait_seconds: float = 10.0,
    publish_timeout: float = 10.0,
) -> APIRouter:
    api = APIRouter(tags=["hub closures"])
    Caller = Annotated[Principal, Depends(principal)]
    Wait = Annotated[float, Query(ge=0, le=max_wait_seconds)]
    sessions = units.sessions

    async def operating(hub_id: str, caller: Principal) -> None:
        if not caller.may_operate_hub(hub_id):
            raise forbid(f"only hub {hub_id}'s operators close or reopen its slots")
        async with sessions() as session:
            if await store.get_hub(session, hub_id) is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no hub {hub_id!r}")

    async def closure(hub_id: str, closure_id: str) -> Any | None:
        c = store.hub_closures.c
        async with sessions() as session:
            query = select(store.hub_closures).where(c.hub_id == hub_id, c.id == closure_id)
            return (await session.execute(query)).first()

    async def decided(payload: Payload, hub_id: str, wait: float) -> dict[str, Any] | None:
        """Publish the command and wait up to ``wait`` seconds for its answer."""
        event_id = await queue(publish, payload, hub_id, datetime.now(UTC), timeout=publish_timeout)
        if event_id is None:
            return None
        # an operator's command names no carrier: not through the gateway (api_models)
        answer = await answer_to_command(sessions, carrier_id=None, event_id=event_id, seconds=wait)
        return dict(answer[0]) if answer else None

    def refused(answer: dict[str, Any] | None) -> None:
        if answer is not None and answer["type"].endswith("hub_closure_rejected.v1"):
            data = answer["data"]
            raise HTTPException(
                status.HTTP_409_CONFLICT, {"reason": data["reason"], "message": data["message"]}
            )

    @api.post("/v1/hubs/{hub_id}/closures", status_code=status.HTTP_202_ACCEPTED)
    async def close(
        hub_id: str,
        body: ClosureBody,
        strict: Annotated[ClosureBody, Depends(strict_body(ClosureBody))],
        caller: Caller,
        response: Response,
        wait: Wait = 2.0,
    ) -> Closure:
        """Close the hub's slots overlapping ``[from, to)`` (``reason``: why): requests
        and moves into them are rejected ``hub_closed`` (with next slots outside it); the
        carrier of each confirmed booking there gets ``closure_affected.v1`` (with next
        slots) and may move it. Operators of this hub (and admins) only: ``403`` else.
        ``202`` with the closure once decided (else ``pending``: poll ``Location``),
        ``422`` for ``to`` not after ``from``."""
        await operating(hub_id, caller)
        if strict.ends_at <= strict.starts_at:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                {"reason": "empty_range", "message": "'to' must be after 'from'"},
            )
        closure_id = str(uuid.uuid4())
        command = HubClosureRequested(
            hub_id=hub_id,
            closure_id=closure_id,
            starts_at=strict.starts_at,
            ends_at=strict.ends_at,
            reason=strict.reason,
            requested_by=caller.name,
        )
        refused(await decided(command, hub_id, wait))
        view = _view(hub_id, closure_id, await closure(hub_id, closure_id))
        response.headers["Location"] = view.location
        return view

    @api.delete("/v1/hubs/{hub_id}/closures/{closure_id}", status_code=status.HTTP_202_ACCEPTED)
    async def lift(
        hub_id: str,
        closure_id: str,
        caller: Caller,
        reason: Annotated[str | None, Query(max_length=500)] = None,
        wait: Wait = 2.0,
    ) -> Closure:
        """Lift the closure (``reason``: why): its slots take bookings again and are
        offered to their waiting lists. ``404`` for a closure the hub does not have."""
        await operating(hub_id, caller)
        if await closure(hub_id, closure_id) is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"hub {hub_id} has no closure {closure_id!r}"
            )
        command = HubClosureLiftRequested(
            hub_id=hub_id, closure_id=closure_id, reason=reason, requested_by=caller.name
        )
        refused(await decided(command, hub_id, wait))
        return _view(hub_id, closure_id, await closure(hub_id, closure_id))

    @api.get("/v1/hubs/{hub_id}/closures")
    async def closures(hub_id: str, caller: Caller) -> list[Closure]:
        """The hub's closures, in force and lifted, by start (any key: carriers plan
        around them)."""
        c = store.hub_closures.c
        async with sessions() as session:
            rows = await session.execute(
                select(store.hub_closures).where(c.hub_id == hub_id).order_by(c.starts_at, c.id)
            )
            return [_view(hub_id, row.id, row) for row in rows]

    @api.get("/v1/hubs/{hub_id}/closures/{closure_id}")
    async def one(hub_id: str, closure_id: str, caller: Caller) -> Closure:
        row = await closure(hub_id, closure_id)
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"hub {hub_id} has no closure {closure_id!r} (yet)"
            )
        return _view(hub_id, closure_id, row)

    return api
