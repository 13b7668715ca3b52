"""The dispatch service: booking events and telemetry in, routes out (through the outbox),
and the live queue of every hub for its operators."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from typing import Any, Union

from contracts.booking import (
    BookingCancelled,
    BookingCommandRejected,
    BookingConfirmed,
    BookingNoShow,
    BookingRejected,
    ConsignmentCheckedIn,
)
from contracts.dispatch import RouteCompleted, RoutePlanned, RouteStarted, StopReturned
from contracts.envelope import REGISTRY, CloudEvent
from contracts.fleet import RouteFinished, StopDelivered, StopFailed, VehicleStatusChanged
from contracts.topics import BOOKING_EVENTS, DISPATCH_EVENTS, FLEET_TELEMETRY
from services.dispatch import store, views
from services.dispatch.changes import PRUNE_EVERY_SECONDS, ChangeLog
from services.dispatch.domain import WavePolicy
from services.dispatch.fleet import FleetFile, VehicleConfig, load_fleet
from services.dispatch.handlers import DispatchHandlers
from services.dispatch.solver import Plan, WaveInstance, plan_wave
from services.runtime.service import Service

log = logging.getLogger(__name__)

SOLVER_GRACE_SECONDS = 30.0

BookingEvent = CloudEvent[
    Union[  # noqa: UP007 - FastStream documents the union
        BookingConfirmed,
        ConsignmentCheckedIn,
        BookingCancelled,
        BookingNoShow,
        BookingRejected,
        BookingCommandRejected,
    ]
]
Telemetry = CloudEvent[Union[VehicleStatusChanged, StopDelivered, StopFailed, RouteFinished]]  # noqa: UP007

# Every type on the booking topic is accepted (the ones dispatch has no use for still move
# the hub's clock); only what is no contract at all goes to the DLQ.
BOOKING_TOPIC_TYPES = {t for t, model in REGISTRY.items() if model.topic == BOOKING_EVENTS.name}
TELEMETRY_TOPIC_TYPES = {t for t, model in REGISTRY.items() if model.topic == FLEET_TELEMETRY.name}


class DispatchService(Service):
    name = "dispatch"
    outbox = store.outbox
    inbox = store.inbox

    def prepare(self) -> None:
        # the live queue's changes, in the database: the HTTP process follows them
        # whichever instance consumes the hub, and the fleet admin writes them from there
        self.changes = ChangeLog(self.engine)

    def setup(self) -> None:
        self.fleet: FleetFile = load_fleet(self.settings.fleet_file)
        self._pool: ProcessPoolExecutor | None = None
        self.handlers = DispatchHandlers(
            policy=WavePolicy(
                min_stops=self.settings.dispatch_wave_min_stops,
                interval=timedelta(minutes=self.settings.dispatch_wave_interval_minutes),
            ),
            solver_time_limit_s=self.settings.dispatch_solver_time_limit_seconds,
            fleet=self.fleet,
            changes=self.changes,
            planner=self.plan,
            events_topic=self.settings.topic(DISPATCH_EVENTS.name),
        )
        self.bookings = self.consume(
            topic=BOOKING_EVENTS.name,
            accepts=BookingEvent,
            allowed_types=BOOKING_TOPIC_TYPES,
            handler=self.handlers.on_booking_event,
            consumer="dispatch-bookings",
            description="Confirmed bookings become expected load, check-ins dispatchable stops.",
        )
        self.telemetry = self.consume(
            topic=FLEET_TELEMETRY.name,
            accepts=Telemetry,
            allowed_types=TELEMETRY_TOPIC_TYPES,
            handler=self.handlers.on_telemetry,
            consumer="dispatch-telemetry",
            description="Vehicle status, deliveries, failures and finished routes.",
        )
        self.publishes(
            topic=DISPATCH_EVENTS.name,
            schema=CloudEvent[RoutePlanned | RouteStarted | RouteCompleted | StopReturned],
            description="Planned, started and completed routes and returned stops, keyed by hub id.",
        )

    async def on_start(self) -> None:
        await self.load_fleet()
        self._warm_up_solver()
        if self.settings.dispatch_wave_nudge_seconds > 0:
            self.every(self.settings.dispatch_wave_nudge_seconds, self.nudge, "wave-nudge")
        # the instances that write the log keep it short (wall clock: it only serves
        # viewers catching up)
        self.every(PRUNE_EVERY_SECONDS, self.changes.prune, "change-log-prune")

    def http_routers(self) -> list:
        """The queue, its stream and the fleet admin: from dispatch's database, so any
        process serves them, consuming or not (`serve api`)."""
        from services.dispatch import api

        return [lambda principal: api.router(self, principal)]

    async def stop(self) -> None:
        await self.changes.stop()
        await super().stop()
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------- fleet -------

    async def load_fleet(self) -> int:
        count = 0
        async with self.sessions() as session, session.begin():
            for hub in self.fleet.hubs:
                for vehicle in hub.vehicles:
                    await store.upsert_vehicle(session, hub.hub_id, vehicle)
                    count += 1
        log.info(
            "loaded %d vehicles from %s", count, self.settings.fleet_file or "the sample fleet"
        )
        return count

    async def put_vehicle(self, hub_id: str, vehicle: VehicleConfig) -> bool:
        """Add or replace a vehicle (admin). False when it belongs to another hub."""
        async with self.sessions() as session, session.begin():
            current = await store.vehicle_hub(session, vehicle.id)
            if current is not None and current != hub_id:
                return False
            await store.upsert_vehicle(session, hub_id, vehicle)
            self.changes.record(session, hub_id, "fleet", vehicle_id=vehicle.id, action="put")
        return True

    async def remove_vehicle(self, hub_id: str, vehicle_id: str) -> str | None:
        """Take a vehicle out of the fleet (admin); a reason when it cannot be."""
        async with self.sessions() as session, session.begin():
            if await store.vehicle_hub(session, vehicle_id) != hub_id:
                return f"hub {hub_id} has no vehicle {vehicle_id}"
            route = await store.active_route_of(session, vehicle_id)
            if route is not None:
                return (
                    f"vehicle {vehicle_id} has route {route.id} ({route.status.value}): "
                    "wait until it is completed"
                )
            await store.deactivate_vehicle(session, vehicle_id)
            self.changes.record(session, hub_id, "fleet", vehicle_id=vehicle_id, action="removed")
        return None

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

    # ------------------------------------------------------------------- waves -------

    def _solver_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process runs threads (Kafka clients, the event loop).
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def _warm_up_solver(self) -> None:
        """Start the worker and import OR-Tools now, not inside the first wave's budget."""
        if self.settings.dispatch_solver_in_subprocess and (
            self.settings.dispatch_solver_time_limit_seconds > 0
        ):
            self._warm_up = self._solver_pool().submit(_import_solver)

    async def plan(self, instance: WaveInstance, time_limit_s: float) -> Plan:
        if time_limit_s <= 0 or not self.settings.dispatch_solver_in_subprocess:
            return plan_wave(instance, time_limit_s=time_limit_s)
        loop = asyncio.get_running_loop()
        try:
            # OR-Tools keeps to its limit; the margin covers spawning and importing it.
            return await asyncio.wait_for(
                loop.run_in_executor(self._solver_pool(), _plan, instance, time_limit_s),
                timeout=time_limit_s + SOLVER_GRACE_SECONDS,
            )
        except (BrokenProcessPool, TimeoutError) as exc:
            log.error("the solver process failed (%r): greedy fallback for this wave", exc)
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            plan = plan_wave(instance, time_limit_s=0)
            plan.notes.append(f"solver process failed ({type(exc).__name__}): greedy fallback")
            return plan

    async def nudge(self, now: datetime | None = None) -> int:
        """The wall-clock nudge for quiet hubs: the same code path as after an event."""
        now = now or datetime.now(UTC)
        planned = 0
        async with self.sessions() as session:
            hub_ids = await store.hub_ids(session)
        for hub_id in hub_ids:
            async with self.sessions() as session, session.begin():
                await self.handlers.lock_hub(session, hub_id)
                planned += await self.handlers.maybe_plan(session, hub_id, now)
        if planned and self.relay is not None:
            self.relay.notify()
        return planned

    # ------------------------------------------------------------------- views -------

    async def snapshot(self, hub_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            return await views.snapshot(session, hub_id)

    def known_hub(self, hub_id: str) -> bool:
        return any(h.hub_id == hub_id for h in self.fleet.hubs)


def _plan(instance: WaveInstance, time_limit_s: float) -> Plan:
    return plan_wave(instance, time_limit_s=time_limit_s)


def _import_solver() -> None:
    import ortools.constraint_solver.pywrapcp  # noqa: F401 - the import is the warm-up
