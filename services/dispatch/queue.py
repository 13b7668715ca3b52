"""What the dispatch HTTP routes read and write: a hub's queue (snapshot and change log)
and its fleet. Every process that serves HTTP has one, consuming or not (`serve api`):
it works on dispatch's database only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.dispatch import store, views
from services.dispatch.changes import ChangeLog
from services.dispatch.fleet import VehicleConfig
from services.runtime.uow import UnitOfWork


class HubQueues:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        unit_of_work: Callable[[], contextlib.AbstractAsyncContextManager[UnitOfWork]],
        changes: ChangeLog,
    ) -> None:
        self.sessions = sessions
        self._unit_of_work = unit_of_work
        self.changes = changes

    def unit_of_work(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return self._unit_of_work()

    async def snapshot(self, hub_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            return await views.snapshot(session, hub_id)

    async def fleet_of(self, hub_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            return [
                {
                    **v.config.model_dump(mode="json"),
                    "status": v.status.value,
                    "battery_pct": v.battery_pct,
                    "route_id": v.busy_route,
                }
                for v in await store.fleet_of(session, hub_id)
            ]

    async def put_vehicle(self, hub_id: str, vehicle: VehicleConfig) -> bool:
        """Add or replace a vehicle (admin). False when it belongs to another hub."""
        async with self.unit_of_work() as uow:
            current = await store.vehicle_hub(uow.session, vehicle.id)
            if current is not None and current != hub_id:
                return False
            await store.upsert_vehicle(uow.session, hub_id, vehicle)
            self.changes.record(uow.session, hub_id, "fleet", vehicle_id=vehicle.id, action="put")
        return True

    async def remove_vehicle(self, hub_id: str, vehicle_id: str) -> str | None:
        """Take a vehicle out of the fleet (admin); a reason when it cannot be."""
        async with self.unit_of_work() as uow:
            if await store.vehicle_hub(uow.session, vehicle_id) != hub_id:
                return f"hub {hub_id} has no vehicle {vehicle_id}"
            route = await store.active_route_of(uow.session, vehicle_id)
            if route is not None:
                return (
                    f"vehicle {vehicle_id} has route {route.id} ({route.status.value}): "
                    "wait until it is completed"
                )
            await store.deactivate_vehicle(uow.session, vehicle_id)
            self.changes.record(
                uow.session, hub_id, "fleet", vehicle_id=vehicle_id, action="removed"
            )
        return None
