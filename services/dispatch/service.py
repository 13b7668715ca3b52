"""The dispatch service: booking events and telemetry in, routes out (through the outbox),
and the live queue of every hub for its operators."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking import (
    BookingCancelled,
    BookingConfirmed,
    BookingNoShow,
    BookingRescheduled,
    BookingStopTerms,
    ConsignmentCheckedIn,
)
from contracts.fleet import (
    RouteFinished,
    StopDelivered,
    StopDeliveredV2,
    StopFailed,
    StopFailedV2,
    VehicleStatusChanged,
)
from contracts.topics import BOOKING_EVENTS, DISPATCH_EVENTS, FLEET_TELEMETRY
from services.dispatch import privacy, store
from services.dispatch.changes import PRUNE_EVERY_SECONDS, ChangeLog
from services.dispatch.control import DispatcherControl
from services.dispatch.domain import WavePolicy
from services.dispatch.fleet import FleetFile, load_fleet
from services.dispatch.handlers import DispatchHandlers
from services.dispatch.planner import SolverProcess
from services.dispatch.queue import HubQueues
from services.dispatch.routes import RouteFollowing
from services.dispatch.waves import WavePlanning
from services.runtime import metrics
from services.runtime.service import Service
from services.runtime.wiring import Consumes, Publishes, ServiceSpec

log = logging.getLogger(__name__)

SPEC = ServiceSpec(
    name="dispatch",
    migrations=Path(__file__).parent / "migrations",
    health_port=8082,
    description="Fleet, waves, routing, and the live queue of every hub.",
    consumes=(
        Consumes(
            BOOKING_EVENTS,
            consumer="dispatch-bookings",
            handlers={
                BookingConfirmed: DispatchHandlers.on_confirmed,
                ConsignmentCheckedIn: DispatchHandlers.on_checked_in,
                BookingCancelled: DispatchHandlers.on_cancelled_or_no_show,
                BookingNoShow: DispatchHandlers.on_cancelled_or_no_show,
                BookingRescheduled: DispatchHandlers.on_rescheduled,
                BookingStopTerms: DispatchHandlers.on_stop_terms,
            },
            # rejections: nothing to dispatch, but they move the hub's event time
            otherwise=DispatchHandlers.on_other_booking_event,
            description="Confirmed bookings become expected load (moved with a reschedule), "
            "check-ins dispatchable stops.",
        ),
        Consumes(
            FLEET_TELEMETRY,
            consumer="dispatch-telemetry",
            handlers={
                VehicleStatusChanged: DispatchHandlers.on_vehicle_status,
                StopDelivered: DispatchHandlers.on_stop_delivered,
                StopDeliveredV2: DispatchHandlers.on_stop_delivered,
                StopFailed: DispatchHandlers.on_stop_failed,
                StopFailedV2: DispatchHandlers.on_stop_failed,
                RouteFinished: DispatchHandlers.on_route_finished,
            },
            description="Vehicle status, deliveries, failures and finished routes.",
        ),
    ),
    publishes=(
        Publishes(
            DISPATCH_EVENTS,
            description="Planned, started and completed routes, returned stops, and each "
            "stop's progress for its carrier (planned with ETA, delivered with proof, ...), "
            "keyed by hub id.",
        ),
    ),
)


class DispatchService(Service):
    spec = SPEC
    outbox = store.outbox
    inbox = store.inbox

    def prepare(self) -> None:
        # the live queue's changes, in the database: the HTTP process follows them
        # whichever instance consumes the hub, and the fleet admin writes them from there
        self.changes = ChangeLog(self.engine)
        self.queues = HubQueues(
            sessions=self.sessions, unit_of_work=self.unit_of_work, changes=self.changes
        )
        self.solver = SolverProcess(
            in_subprocess=self.settings.dispatch_solver_in_subprocess,
            iterations=self.settings.dispatch_solver_iterations,
            seed=self.settings.dispatch_solver_seed,
        )
        # waves are planned by the consumers, and re-planned by a dispatcher over HTTP
        self.fleet: FleetFile = load_fleet(self.settings.fleet_file)
        self.waves = WavePlanning(
            policy=WavePolicy(
                min_stops=self.settings.dispatch_wave_min_stops,
                max_wait=timedelta(minutes=self.settings.dispatch_wave_interval_minutes),
            ),
            fleet=self.fleet,
            changes=self.changes,
            planner=metrics.timed_planner(self.solver.plan),  # solver time and quality
            solver_time_limit_s=self.settings.dispatch_solver_time_limit_seconds,
        )
        self.control = DispatcherControl(
            unit_of_work=self.unit_of_work, waves=self.waves, changes=self.changes
        )

    def make_handlers(self) -> DispatchHandlers:
        return DispatchHandlers(
            routes=RouteFollowing(self.changes, self.fleet.service_minutes),
            waves=self.waves,
            changes=self.changes,
        )

    async def on_start(self) -> None:
        await self.load_fleet()
        self.solver.warm_up(self.settings.dispatch_solver_time_limit_seconds)
        if self.settings.dispatch_wave_nudge_seconds > 0:
            self.every(self.settings.dispatch_wave_nudge_seconds, self.nudge, "wave-nudge")
        # the instances that write the log keep it short (wall clock: it only serves
        # viewers catching up)
        self.every(PRUNE_EVERY_SECONDS, self.changes.prune, "change-log-prune")

    def http_routers(self) -> list[Any]:
        """The queue, its stream and the fleet admin: from dispatch's database, so any
        process serves them, consuming or not (`serve api`)."""
        from services.dispatch import api

        return [lambda principal: api.router(self.queues, principal, control=self.control)]

    async def stop(self) -> None:
        await self.changes.stop()
        await super().stop()
        self.solver.shutdown()

    async def purge_tables(
        self, session: AsyncSession, before: datetime, now: datetime
    ) -> dict[str, int]:
        return await privacy.purge(session, before, now)

    async def load_fleet(self) -> int:
        count = 0
        async with self.unit_of_work() as uow:
            for hub in self.fleet.hubs:
                for vehicle in hub.vehicles:
                    await store.upsert_vehicle(uow.session, hub.hub_id, vehicle)
                    count += 1
        log.info(
            "loaded %d vehicles from %s", count, self.settings.fleet_file or "the sample fleet"
        )
        return count

    async def nudge(self, now: datetime | None = None) -> int:
        """The wall-clock nudge for quiet hubs: the same code path as after an event."""
        now = now or datetime.now(UTC)
        planned = 0
        async with self.sessions() as session:
            hub_ids = await store.hub_ids(session)
        for hub_id in hub_ids:
            async with self.unit_of_work() as uow:
                await store.lock_hub(uow.session, hub_id)
                planned += await self.waves.maybe_plan(uow, hub_id, now)
        return planned
