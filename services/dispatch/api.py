"""HTTP routes of the dispatch service: the live queue of a hub (snapshot and Server-Sent
Events) and the dispatcher's actions for its operators, and fleet management for admins.

``principal`` is the FastAPI dependency that authenticates the caller (the platform's API
keys); it yields a :class:`~services.runtime.auth.Principal`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from contracts.dispatch import DispatcherActionKind
from services.dispatch.control import Action, DispatcherControl, NotFound, Refused
from services.dispatch.fleet import VehicleConfig
from services.dispatch.queue import HubQueues
from services.runtime.auth import Principal

# Several changes that arrive while a client is being served are sent as one event with
# one fresh snapshot, so a burst of telemetry does not turn into a burst of queries.
COALESCE_SECONDS = 0.05


class DispatcherRequest(BaseModel):
    """One action of the hub's dispatcher; ``reason`` is kept with it (the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    action: DispatcherActionKind
    reason: str = Field(min_length=1, max_length=500, description="why: kept in the event")
    booking_id: str | None = Field(default=None, max_length=100)
    stop_id: str | None = Field(default=None, max_length=64)
    vehicle_id: str | None = Field(default=None, max_length=64, description="pin: the vehicle")
    route_id: str | None = Field(default=None, max_length=100, description="move: the target")


def router(
    service: HubQueues, principal: Callable[..., Any], *, control: DispatcherControl | None = None
) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["dispatch"])

    def operator_of(hub_id: str, who: Any) -> None:
        if not who.may_operate_hub(hub_id):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the dispatch queue of hub {hub_id} is for its operators (operator:{hub_id} "
                "keys) and admins",
            )

    def admin(who: Any) -> None:
        if not who.is_admin():
            raise HTTPException(status.HTTP_403_FORBIDDEN, "managing fleets needs an admin key")

    async def snapshot_or_404(hub_id: str) -> dict[str, Any]:
        snap = await service.snapshot(hub_id)
        if snap is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"dispatch knows no hub {hub_id!r}: no fleet and no booking for it yet",
            )
        return snap

    @api.get("/hubs/{hub_id}/dispatch", summary="The dispatch queue of a hub, now")
    async def dispatch_snapshot(hub_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
        operator_of(hub_id, who)
        return await snapshot_or_404(hub_id)

    @api.get(
        "/hubs/{hub_id}/dispatch/stream",
        summary="Server-Sent Events: a 'snapshot' event, then a 'change' event (the changes "
        "and the new snapshot) after every committed change of the hub's queue",
    )
    async def dispatch_stream(
        hub_id: str, request: Request, who: Principal = Depends(principal)
    ) -> EventSourceResponse:
        operator_of(hub_id, who)
        # Follow the hub's change log from its head *before* reading the first snapshot:
        # nothing committed in between can slip through.
        subscription = await service.changes.subscribe(hub_id)
        try:
            first = await snapshot_or_404(hub_id)
        except HTTPException:
            service.changes.unsubscribe(subscription)
            raise

        async def events() -> AsyncIterator[dict[str, Any]]:
            seq = 0
            queue = subscription.queue
            try:
                yield {"event": "snapshot", "id": str(seq), "data": json.dumps(first)}
                while True:
                    changes = list(await queue.get())
                    await asyncio.sleep(COALESCE_SECONDS)
                    while not queue.empty():
                        changes.extend(queue.get_nowait())
                    seq += 1
                    snap = await service.snapshot(hub_id)
                    yield {
                        "event": "change",
                        "id": str(seq),
                        "data": json.dumps({"changes": changes, "snapshot": snap}),
                    }
            finally:
                service.changes.unsubscribe(subscription)

        return EventSourceResponse(events(), ping=15)

    @api.post(
        "/hubs/{hub_id}/dispatch/actions",
        summary="The hub's dispatcher acts: hold/unhold or pin/unpin a stop, move a stop "
        "between proposed routes, re-plan, release a proposed wave (operators of the hub)",
    )
    async def dispatcher_action(
        hub_id: str, body: DispatcherRequest, who: Principal = Depends(principal)
    ) -> dict[str, Any]:
        operator_of(hub_id, who)
        if control is None:  # pragma: no cover - every platform process wires it
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no dispatcher control here")
        try:
            event = await control.apply(
                hub_id,
                Action(
                    kind=body.action,
                    by=who.name,
                    reason=body.reason,
                    booking_id=body.booking_id,
                    stop_id=body.stop_id,
                    vehicle_id=body.vehicle_id,
                    route_id=body.route_id,
                ),
            )
        except NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        except Refused as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return {
            "action": event.model_dump(mode="json"),
            "snapshot": await service.snapshot(hub_id),
        }

    @api.get("/hubs/{hub_id}/fleet", summary="The hub's vehicles, their limits and state")
    async def get_fleet(hub_id: str, who: Principal = Depends(principal)) -> list[dict[str, Any]]:
        operator_of(hub_id, who)
        return await service.fleet_of(hub_id)

    @api.put(
        "/hubs/{hub_id}/fleet/{vehicle_id}",
        summary="Add or replace a vehicle (admin)",
        status_code=status.HTTP_200_OK,
    )
    async def put_vehicle(
        hub_id: str, vehicle_id: str, vehicle: VehicleConfig, who: Principal = Depends(principal)
    ) -> dict[str, Any]:
        admin(who)
        if vehicle.id != vehicle_id:
            raise HTTPException(
                422,
                f"the body describes vehicle {vehicle.id!r} but the path names {vehicle_id!r}",
            )
        if not await service.put_vehicle(hub_id, vehicle):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"vehicle {vehicle_id} belongs to another hub: remove it there first",
            )
        return vehicle.model_dump(mode="json")

    @api.delete(
        "/hubs/{hub_id}/fleet/{vehicle_id}",
        summary="Take a vehicle out of the hub's fleet (admin)",
        status_code=status.HTTP_204_NO_CONTENT,
    )
    async def delete_vehicle(
        hub_id: str, vehicle_id: str, who: Principal = Depends(principal)
    ) -> None:
        admin(who)
        problem = await service.remove_vehicle(hub_id, vehicle_id)
        if problem is not None:
            code = status.HTTP_409_CONFLICT if "route" in problem else status.HTTP_404_NOT_FOUND
            raise HTTPException(code, problem)

    return api
