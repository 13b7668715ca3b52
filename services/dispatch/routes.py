"""Routes followed through telemetry: started, stops delivered or failed, finished
(used by :class:`services.dispatch.handlers.DispatchHandlers`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from contracts.booking import StopKind
from contracts.dispatch import (
    RouteCompleted,
    RouteStarted,
    StopProgress,
    StopRef,
    StopReturned,
)
from contracts.fleet import (
    RouteFinished,
    StopDelivered,
    StopDeliveredV2,
    StopFailed,
    StopFailedV2,
    VehicleStatus,
)
from services.dispatch import domain, progress, store
from services.dispatch.changes import ChangeLog
from services.dispatch.domain import MAX_ATTEMPTS, RouteStatus, StopStatus
from services.runtime.uow import UnitOfWork

log = logging.getLogger(__name__)


class RouteFollowing:
    """A route's life after planning, as its vehicle reports it."""

    def __init__(
        self, changes: ChangeLog, service_minutes: Callable[[str], float] = lambda hub: 0.0
    ) -> None:
        self.changes = changes
        self.service_minutes = service_minutes

    async def _shift_etas(
        self, uow: UnitOfWork, route: store.RouteRow, stop: store.StopRow, served_at: datetime
    ) -> None:
        """The route is behind (or ahead of) its plan at ``stop`` by more than
        ``progress.ETA_SHIFT``: the stops after it move by as much, and their carriers get
        the new ETA."""
        if stop.eta is None:
            return
        started = served_at - timedelta(minutes=self.service_minutes(route.hub_id))
        delay = started - stop.eta
        if abs(delay) < progress.ETA_SHIFT:
            return
        for later in await store.stops_of_route(uow.session, route.id):
            if (
                later.status is not StopStatus.ON_ROUTE
                or later.eta is None
                or later.eta <= stop.eta
            ):
                continue
            eta = later.eta + delay
            await store.set_stop(
                uow.session, later.booking_id, later.stop_id, now=served_at, eta=eta
            )
            progress.emit(
                uow,
                later,
                StopProgress.ETA_CHANGED,
                served_at,
                vehicle_id=route.vehicle_id,
                eta=eta,
                reason=f"the route is {delay.total_seconds() / 60:+.0f} min against its plan",
            )

    async def start(self, uow: UnitOfWork, route: store.RouteRow, now: datetime) -> None:
        await store.set_route(uow.session, route.id, status=RouteStatus.RUNNING, started_at=now)
        for stop in await store.stops_of_route(uow.session, route.id):
            if stop.status is StopStatus.PLANNED:
                await store.set_stop(
                    uow.session,
                    stop.booking_id,
                    stop.stop_id,
                    now=now,
                    status=StopStatus.ON_ROUTE,
                    reason=None,
                )
        uow.emit(
            RouteStarted(
                route_id=route.id, hub_id=route.hub_id, vehicle_id=route.vehicle_id, started_at=now
            ),
            key=route.hub_id,
            time=now,
        )
        self.changes.record(uow.session, route.hub_id, "route_started", route_id=route.id)

    async def delivered(
        self,
        uow: UnitOfWork,
        route: store.RouteRow,
        t: StopDelivered | StopDeliveredV2,
        now: datetime,
    ) -> None:
        stop = await store.get_stop(uow.session, t.booking_id, t.stop_id)
        if stop is None or stop.route_id != route.id:
            log.warning(
                "delivery of stop %s/%s not on route %s: ignored", t.booking_id, t.stop_id, route.id
            )
            return
        proof = t.proof.model_dump(mode="json") if isinstance(t, StopDeliveredV2) else None
        await store.set_stop(
            uow.session,
            stop.booking_id,
            stop.stop_id,
            now=now,
            status=StopStatus.DELIVERED,
            reason=None,
            proof=proof,
        )
        picked_up = stop.kind == StopKind.PICKUP.value
        progress.emit(
            uow,
            stop,
            StopProgress.COLLECTED if picked_up else StopProgress.DELIVERED,
            now,
            vehicle_id=route.vehicle_id,
            eta=stop.eta,
            proof=proof,
        )
        await self._shift_etas(
            uow, route, stop, t.proof.at if isinstance(t, StopDeliveredV2) else now
        )
        self.changes.record(
            uow.session,
            route.hub_id,
            "stop_delivered",
            route_id=route.id,
            booking_id=stop.booking_id,
            stop_id=stop.stop_id,
        )

    async def failed(
        self, uow: UnitOfWork, route: store.RouteRow, t: StopFailed | StopFailedV2, now: datetime
    ) -> None:
        stop = await store.get_stop(uow.session, t.booking_id, t.stop_id)
        if stop is None or stop.route_id != route.id or stop.status is StopStatus.FAILED:
            log.warning(
                "failure of stop %s/%s not open on route %s: ignored",
                t.booking_id,
                t.stop_id,
                route.id,
            )
            return
        attempts = stop.attempts + 1
        await store.set_stop(
            uow.session,
            stop.booking_id,
            stop.stop_id,
            now=now,
            status=StopStatus.FAILED,
            attempts=attempts,
            reason=f"delivery failed ({t.reason}), attempt {attempts} of {MAX_ATTEMPTS}; "
            "back in the queue when its vehicle returns",
        )
        progress.emit(
            uow,
            stop,
            StopProgress.FAILED,
            now,
            vehicle_id=route.vehicle_id,
            reason=t.reason,
            attempts=attempts,
        )
        await self._shift_etas(uow, route, stop, t.at if isinstance(t, StopFailedV2) else now)
        self.changes.record(
            uow.session,
            route.hub_id,
            "stop_failed",
            route_id=route.id,
            booking_id=stop.booking_id,
            stop_id=stop.stop_id,
            attempts=attempts,
        )

    async def finish(
        self, uow: UnitOfWork, route: store.RouteRow, t: RouteFinished, now: datetime
    ) -> None:
        delivered: list[StopRef] = []
        failed: list[StopRef] = []
        for stop in await store.stops_of_route(uow.session, route.id):
            ref = StopRef(booking_id=stop.booking_id, stop_id=stop.stop_id)
            if stop.status is StopStatus.DELIVERED:
                delivered.append(ref)
                if stop.kind == StopKind.PICKUP.value:  # collected: now at the hub for its carrier
                    progress.emit(uow, stop, StopProgress.AT_HUB, now, vehicle_id=route.vehicle_id)
                continue
            if stop.status is StopStatus.FAILED:
                failed.append(ref)
                next_status = domain.after_failure(stop.attempts)
            else:  # never attempted: the parcel came back untouched, no attempt counted
                next_status = StopStatus.WAITING
            if next_status is StopStatus.RETURNED:
                reason = f"returned to the carrier after {stop.attempts} failed deliveries"
                await store.set_stop(
                    uow.session,
                    stop.booking_id,
                    stop.stop_id,
                    now=now,
                    status=StopStatus.RETURNED,
                    reason=reason,
                )
                uow.emit(
                    StopReturned(
                        hub_id=route.hub_id,
                        booking_id=stop.booking_id,
                        carrier_id=stop.carrier_id,
                        stop_id=stop.stop_id,
                        attempts=stop.attempts,
                        reason=reason,
                    ),
                    key=route.hub_id,
                    time=now,
                )
                progress.emit(uow, stop, StopProgress.RETURNED, now, reason=reason)
                self.changes.record(
                    uow.session,
                    route.hub_id,
                    "stop_returned",
                    booking_id=stop.booking_id,
                    stop_id=stop.stop_id,
                )
            else:
                what = "failed" if stop.status is StopStatus.FAILED else "not attempted"
                await store.set_stop(
                    uow.session,
                    stop.booking_id,
                    stop.stop_id,
                    now=now,
                    status=StopStatus.WAITING,
                    route_id=None,
                    queued_at=now,
                    reason=f"back from route {route.id} ({what}, {stop.attempts} failed so far)",
                )
                self.changes.record(
                    uow.session,
                    route.hub_id,
                    "stop_requeued",
                    booking_id=stop.booking_id,
                    stop_id=stop.stop_id,
                )
        await store.set_route(
            uow.session,
            route.id,
            status=RouteStatus.COMPLETED,
            completed_at=now,
            actual_km=t.actual_km,
            energy_kwh=t.energy_kwh,
        )
        await store.set_vehicle_status(
            uow.session, route.vehicle_id, status=VehicleStatus.AVAILABLE, now=now
        )
        planned = route.planned
        uow.emit(
            RouteCompleted(
                route_id=route.id,
                hub_id=route.hub_id,
                vehicle_id=route.vehicle_id,
                city_id=planned["city_id"],
                vehicle_type=planned["vehicle_type"],
                completed_at=now,
                planned_km=planned["planned_km"],
                actual_km=t.actual_km,
                energy_kwh=t.energy_kwh,
                delivered=delivered,
                failed=failed,
            ),
            key=route.hub_id,
            time=now,
        )
        self.changes.record(
            uow.session,
            route.hub_id,
            "route_completed",
            route_id=route.id,
            delivered=len(delivered),
            failed=len(failed),
        )
