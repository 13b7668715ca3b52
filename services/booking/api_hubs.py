"""HTTP routes for hubs: the catalogue, a day's slots with free capacity, and the admins'
hub management. Split from the bookings routes (api.py), which include these."""

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from services.booking import domain, slot_grid, store
from services.booking.api_models import SlotView
from services.booking.closures import in_force_between, with_closures
from services.booking.domain import HubConfig
from services.runtime.auth import Principal, forbid
from services.runtime.uow import UnitsOfWork


def router(*, units: UnitsOfWork, principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    api = APIRouter()
    Caller = Annotated[Principal, Depends(principal)]
    sessions = units.sessions  # reads; every write goes through a unit of work

    @api.get("/v1/hubs", tags=["hubs"])
    async def list_hubs(caller: Caller) -> list[dict[str, Any]]:
        async with sessions() as session:
            hubs = await store.load_hubs(session)
        return [hub.model_dump(mode="json") for hub in sorted(hubs.values(), key=lambda h: h.id)]

    @api.get("/v1/hubs/{hub_id}/slots", response_model=list[SlotView], tags=["hubs"])
    async def slots(
        hub_id: str, caller: Caller, day: Annotated[date, Query(alias="date")]
    ) -> list[SlotView]:
        async with sessions() as session:
            hub = await store.get_hub(session, hub_id)
            if hub is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no hub {hub_id!r}")
            grid = slot_grid.slots_on(hub, day)  # the catalogue's grid, closures aside
            usage = (
                await store.usage_between(session, hub.id, grid[0], grid[-1] + timedelta(seconds=1))
                if grid
                else {}
            )
            # the operators' closures over the day: those slots are shown, marked closed
            closed = (
                with_closures(hub, await in_force_between(session, hub.id, grid[0], grid[-1] + hub.slot_length))
                if grid
                else hub
            )  # fmt: skip
        now = datetime.now(UTC)
        result = []
        for slot in grid:
            free = domain.free_capacity(hub, slot, usage.get(slot, domain.SlotUsage()))
            in_window = now < slot <= now + timedelta(days=hub.booking_horizon_days)
            closure = slot_grid.closure_of(closed, slot)
            result.append(
                SlotView(
                    start=slot,
                    end=free.end,
                    docks_total=hub.docks_per_slot,
                    docks_free=free.free_docks,
                    volume_total_m3=hub.volume_per_slot_m3,
                    volume_free_m3=free.free_volume_l / 1000,
                    bookable=in_window and free.free_docks > 0 and closure is None,
                    closure_id=closure.closure_id if closure else None,
                    closure_reason=closure.reason if closure else None,
                )
            )
        return result

    @api.put("/v1/admin/hubs/{hub_id}", tags=["admin"])
    async def put_hub(hub_id: str, hub: HubConfig, caller: Caller) -> dict[str, Any]:
        if not caller.is_admin():
            raise forbid("only admins manage hubs")
        if hub.id != hub_id:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"body id {hub.id!r} != path id {hub_id!r}"
            )
        async with units() as uow:
            await store.upsert_hub(uow.session, hub)
        return hub.model_dump(mode="json")

    @api.delete("/v1/admin/hubs/{hub_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["admin"])
    async def delete_hub(hub_id: str, caller: Caller) -> Response:
        if not caller.is_admin():
            raise forbid("only admins manage hubs")
        async with units() as uow:
            session = uow.session
            active = await store.active_bookings_at_hub(session, hub_id, after=datetime.now(UTC))
            if active:
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    f"hub {hub_id} still has {active} upcoming bookings; cancel them first",
                )
            if not await store.delete_hub(session, hub_id):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no hub {hub_id!r}")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return api
