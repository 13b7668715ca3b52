"""Booking events and vehicle telemetry in; waves planned and routes followed; dispatch
events out through the outbox. Everything one event causes is written in the consumer's
transaction, and decisions use the event's time, never the wall clock."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking import (
    BookingCancelled,
    BookingConfirmed,
    BookingNoShow,
    ConsignmentCheckedIn,
)
from contracts.common import GeoPoint
from contracts.dispatch import (
    RouteCompleted,
    RoutePlanned,
    RouteStarted,
    RouteStop,
    StopRef,
    StopReturned,
)
from contracts.envelope import Payload, new_event
from contracts.fleet import (
    RouteFinished,
    StopDelivered,
    StopFailed,
    VehicleStatus,
    VehicleStatusChanged,
)
from contracts.topics import DISPATCH_EVENTS
from services.dispatch import domain, store
from services.dispatch.domain import MAX_ATTEMPTS, RouteStatus, StopStatus, WavePolicy
from services.dispatch.feed import QueueFeed
from services.dispatch.fleet import FleetFile
from services.dispatch.solver import Plan, Point, StopDemand, WaveInstance, check_plan, plan_wave
from services.runtime.consumer import Delivery
from services.runtime.outbox import enqueue

log = logging.getLogger(__name__)

SOURCE = "microhub/dispatch"

BOOKING_TYPES = {
    BookingConfirmed.event_type,
    ConsignmentCheckedIn.event_type,
    BookingCancelled.event_type,
    BookingNoShow.event_type,
}
TELEMETRY_TYPES = {
    VehicleStatusChanged.event_type,
    StopDelivered.event_type,
    StopFailed.event_type,
    RouteFinished.event_type,
}

Planner = Callable[[WaveInstance, float], Awaitable[Plan]]


async def plan_in_process(instance: WaveInstance, time_limit_s: float) -> Plan:
    return plan_wave(instance, time_limit_s=time_limit_s)


class DispatchHandlers:
    def __init__(
        self,
        *,
        policy: WavePolicy,
        solver_time_limit_s: float,
        fleet: FleetFile,
        feed: QueueFeed,
        planner: Planner = plan_in_process,
        events_topic: str = DISPATCH_EVENTS.name,
    ) -> None:
        self.policy = policy
        self.solver_time_limit_s = solver_time_limit_s
        self.fleet = fleet
        self.feed = feed
        self.planner = planner
        self.events_topic = events_topic

    # ----------------------------------------------------------------- plumbing ------

    async def emit(
        self, session: AsyncSession, payload: Payload, *, hub_id: str, now: datetime
    ) -> None:
        event = new_event(payload, source=SOURCE, subject=hub_id, time=now)
        await enqueue(session, store.outbox, event, topic=self.events_topic, key=hub_id)

    def changed(self, session: AsyncSession, hub_id: str, kind: str, **detail: Any) -> None:
        """Note a change for the live queue views; published only once the transaction
        commits, so a viewer never sees what was rolled back."""
        pending: list[tuple[str, dict[str, Any]]] | None = session.info.get("dispatch_changes")
        if pending is None:
            pending = session.info["dispatch_changes"] = []
            feed = self.feed

            def publish(_session: Any) -> None:
                changes = session.info.pop("dispatch_changes", [])
                by_hub: dict[str, list[dict[str, Any]]] = {}
                for hub, change in changes:
                    by_hub.setdefault(hub, []).append(change)
                for hub, hub_changes in by_hub.items():
                    feed.publish(hub, hub_changes)

            def forget(_session: Any) -> None:
                session.info.pop("dispatch_changes", None)

            sa_event.listen(session.sync_session, "after_commit", publish, once=True)
            sa_event.listen(session.sync_session, "after_rollback", forget, once=True)
        pending.append((hub_id, {"kind": kind, **detail}))

    @staticmethod
    async def lock_hub(session: AsyncSession, hub_id: str) -> None:
        """Serialise everything about one hub: the bookings and the telemetry consumers
        (and the wave timer) may touch the same hub at once. A no-op UPDATE takes the row
        lock on PostgreSQL and the write lock on SQLite, until commit."""
        await session.execute(
            update(store.hubs)
            .where(store.hubs.c.id == hub_id)
            .values(wave_seq=store.hubs.c.wave_seq)
        )

    # ----------------------------------------------------------- booking events ------

    async def on_booking_event(self, session: AsyncSession, delivery: Delivery) -> None:
        event = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        if isinstance(event, BookingConfirmed):
            await self.expect(session, event, now)
        else:
            await self.lock_hub(session, event.hub_id)
            if isinstance(event, ConsignmentCheckedIn):
                await self.check_in(session, event, now)
            elif isinstance(event, BookingCancelled | BookingNoShow):
                removed = await store.remove_open_stops(session, event.booking_id)
                if removed:
                    kind = "cancelled" if isinstance(event, BookingCancelled) else "no_show"
                    self.changed(
                        session,
                        event.hub_id,
                        "stops_removed",
                        booking_id=event.booking_id,
                        stops=removed,
                        why=kind,
                    )
        await store.advance_clock(session, event.hub_id, now)
        await self.maybe_plan(session, event.hub_id, now)

    async def expect(self, session: AsyncSession, event: BookingConfirmed, now: datetime) -> None:
        hub = event.hub
        await store.upsert_hub(
            session,
            hub_id=hub.hub_id,
            name=hub.name,
            city_id=hub.city_id,
            timezone=hub.timezone,
            lat=hub.location.lat,
            lon=hub.location.lon,
        )
        await self.lock_hub(session, hub.hub_id)
        added = 0
        slot = event.slot_start.astimezone(UTC)
        for load in domain.split_consignment(event.consignment):
            added += await store.add_stop(
                session,
                booking_id=event.booking_id,
                stop_id=load.stop_id,
                hub_id=event.hub_id,
                carrier_id=event.carrier_id,
                lat=load.location.lat,
                lon=load.location.lon,
                parcels=load.parcels,
                weight_kg=load.weight_kg,
                volume_m3=load.volume_m3,
                status=StopStatus.EXPECTED.value,
                reason=f"expected with the slot at {slot:%Y-%m-%d %H:%M} UTC",
                expected_at=event.slot_start,
                updated_at=now,
            )
        if added:
            self.changed(
                session, event.hub_id, "stops_expected", booking_id=event.booking_id, stops=added
            )

    async def check_in(
        self, session: AsyncSession, event: ConsignmentCheckedIn, now: datetime
    ) -> None:
        known = await store.stops_of_booking(session, event.booking_id)
        if not known:
            log.warning(
                "check-in of booking %s that dispatch never saw confirmed: ignored",
                event.booking_id,
            )
            return
        queued = 0
        for stop in known:
            if stop.status is StopStatus.EXPECTED:
                await store.set_stop(
                    session,
                    stop.booking_id,
                    stop.stop_id,
                    now=now,
                    status=StopStatus.WAITING,
                    queued_at=now,
                    reason="waiting for the next wave",
                )
                queued += 1
        if queued:
            self.changed(
                session, event.hub_id, "stops_waiting", booking_id=event.booking_id, stops=queued
            )

    # --------------------------------------------------------------- telemetry ------

    async def on_telemetry(self, session: AsyncSession, delivery: Delivery) -> None:
        t = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        hub_id = await store.vehicle_hub(session, t.vehicle_id)
        if hub_id is None:
            log.warning("telemetry from vehicle %s, not in any hub's fleet: ignored", t.vehicle_id)
            return
        if hub_id != t.hub_id:
            log.warning(
                "vehicle %s reports hub %s but belongs to %s: using %s",
                t.vehicle_id,
                t.hub_id,
                hub_id,
                hub_id,
            )
        await self.lock_hub(session, hub_id)
        if isinstance(t, VehicleStatusChanged):
            await store.set_vehicle_status(
                session, t.vehicle_id, status=t.status, now=now, battery_pct=t.battery_pct
            )
            self.changed(
                session,
                hub_id,
                "vehicle",
                vehicle_id=t.vehicle_id,
                status=t.status.value,
                battery_pct=t.battery_pct,
            )
            if t.status is VehicleStatus.ON_ROUTE:
                route = await store.active_route_of(session, t.vehicle_id)
                if route is not None and route.status is RouteStatus.PLANNED:
                    await self.start(session, route, now)
        else:
            route = await store.get_route(session, t.route_id)
            if route is None or route.vehicle_id != t.vehicle_id:
                log.warning(
                    "%s for route %s of vehicle %s that dispatch did not plan: ignored",
                    type(t).__name__,
                    t.route_id,
                    t.vehicle_id,
                )
                return
            if route.status is RouteStatus.COMPLETED:
                log.warning("%s for completed route %s: ignored", type(t).__name__, route.id)
                return
            if route.status is RouteStatus.PLANNED:
                await self.start(session, route, now)
            if isinstance(t, StopDelivered):
                await self.delivered(session, route, t, now)
            elif isinstance(t, StopFailed):
                await self.failed(session, route, t, now)
            elif isinstance(t, RouteFinished):
                await self.finish(session, route, t, now)
        await store.advance_clock(session, hub_id, now)
        await self.maybe_plan(session, hub_id, now)

    async def start(self, session: AsyncSession, route: store.RouteRow, now: datetime) -> None:
        await store.set_route(session, route.id, status=RouteStatus.RUNNING, started_at=now)
        for stop in await store.stops_of_route(session, route.id):
            if stop.status is StopStatus.PLANNED:
                await store.set_stop(
                    session,
                    stop.booking_id,
                    stop.stop_id,
                    now=now,
                    status=StopStatus.ON_ROUTE,
                    reason=None,
                )
        await self.emit(
            session,
            RouteStarted(
                route_id=route.id, hub_id=route.hub_id, vehicle_id=route.vehicle_id, started_at=now
            ),
            hub_id=route.hub_id,
            now=now,
        )
        self.changed(session, route.hub_id, "route_started", route_id=route.id)

    async def delivered(
        self, session: AsyncSession, route: store.RouteRow, t: StopDelivered, now: datetime
    ) -> None:
        stop = await store.get_stop(session, t.booking_id, t.stop_id)
        if stop is None or stop.route_id != route.id:
            log.warning(
                "delivery of stop %s/%s not on route %s: ignored", t.booking_id, t.stop_id, route.id
            )
            return
        await store.set_stop(
            session,
            stop.booking_id,
            stop.stop_id,
            now=now,
            status=StopStatus.DELIVERED,
            reason=None,
        )
        self.changed(
            session,
            route.hub_id,
            "stop_delivered",
            route_id=route.id,
            booking_id=stop.booking_id,
            stop_id=stop.stop_id,
        )

    async def failed(
        self, session: AsyncSession, route: store.RouteRow, t: StopFailed, now: datetime
    ) -> None:
        stop = await store.get_stop(session, t.booking_id, t.stop_id)
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
            session,
            stop.booking_id,
            stop.stop_id,
            now=now,
            status=StopStatus.FAILED,
            attempts=attempts,
            reason=f"delivery failed ({t.reason}), attempt {attempts} of {MAX_ATTEMPTS}; "
            "back in the queue when its vehicle returns",
        )
        self.changed(
            session,
            route.hub_id,
            "stop_failed",
            route_id=route.id,
            booking_id=stop.booking_id,
            stop_id=stop.stop_id,
            attempts=attempts,
        )

    async def finish(
        self, session: AsyncSession, route: store.RouteRow, t: RouteFinished, now: datetime
    ) -> None:
        delivered: list[StopRef] = []
        failed: list[StopRef] = []
        for stop in await store.stops_of_route(session, route.id):
            ref = StopRef(booking_id=stop.booking_id, stop_id=stop.stop_id)
            if stop.status is StopStatus.DELIVERED:
                delivered.append(ref)
                continue
            if stop.status is StopStatus.FAILED:
                failed.append(ref)
                next_status = domain.after_failure(stop.attempts)
            else:  # never attempted: the parcel came back untouched, no attempt counted
                next_status = StopStatus.WAITING
            if next_status is StopStatus.RETURNED:
                reason = f"returned to the carrier after {stop.attempts} failed deliveries"
                await store.set_stop(
                    session,
                    stop.booking_id,
                    stop.stop_id,
                    now=now,
                    status=StopStatus.RETURNED,
                    reason=reason,
                )
                await self.emit(
                    session,
                    StopReturned(
                        hub_id=route.hub_id,
                        booking_id=stop.booking_id,
                        carrier_id=stop.carrier_id,
                        stop_id=stop.stop_id,
                        attempts=stop.attempts,
                        reason=reason,
                    ),
                    hub_id=route.hub_id,
                    now=now,
                )
                self.changed(
                    session,
                    route.hub_id,
                    "stop_returned",
                    booking_id=stop.booking_id,
                    stop_id=stop.stop_id,
                )
            else:
                what = "failed" if stop.status is StopStatus.FAILED else "not attempted"
                await store.set_stop(
                    session,
                    stop.booking_id,
                    stop.stop_id,
                    now=now,
                    status=StopStatus.WAITING,
                    route_id=None,
                    queued_at=now,
                    reason=f"back from route {route.id} ({what}, {stop.attempts} failed so far)",
                )
                self.changed(
                    session,
                    route.hub_id,
                    "stop_requeued",
                    booking_id=stop.booking_id,
                    stop_id=stop.stop_id,
                )
        await store.set_route(
            session,
            route.id,
            status=RouteStatus.COMPLETED,
            completed_at=now,
            actual_km=t.actual_km,
            energy_kwh=t.energy_kwh,
        )
        await store.set_vehicle_status(
            session, route.vehicle_id, status=VehicleStatus.AVAILABLE, now=now
        )
        planned = route.planned
        await self.emit(
            session,
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
            hub_id=route.hub_id,
            now=now,
        )
        self.changed(
            session,
            route.hub_id,
            "route_completed",
            route_id=route.id,
            delivered=len(delivered),
            failed=len(failed),
        )

    # ------------------------------------------------------------------- waves ------

    async def maybe_plan(self, session: AsyncSession, hub_id: str, now: datetime) -> int:
        """Plan a wave at ``now`` if one is due; returns the number of routes planned.
        Called after every event for the hub (event time) and by the wave timer."""
        hub = await store.get_hub(session, hub_id)
        if hub is None:
            return 0
        waiting = await store.stops_of_hub(session, hub_id, (StopStatus.WAITING,))
        queued = [s.queued_at for s in waiting if s.queued_at is not None]
        fresh = sum(1 for q in queued if hub.last_wave_at is None or q > hub.last_wave_at)
        why = domain.wave_due(
            now=now,
            waiting=len(waiting),
            fresh=fresh,
            oldest_waiting_since=min(queued) if queued else None,
            last_wave_at=hub.last_wave_at,
            policy=self.policy,
        )
        if why is None:
            return 0
        fleet = await store.fleet_of(session, hub_id)
        specs = [domain.vehicle_spec(v, now=now, timezone=hub.timezone) for v in fleet]
        free = [s for s in specs if s is not None]
        if not free:
            # Nothing to solve; no wave is used up, so the next freed vehicle plans at once.
            busy = [
                f"{v.config.id}: {domain.why_not_free(v, now=now, timezone=hub.timezone)}"
                for v in fleet
            ]
            detail = "; ".join(busy[:6]) + (" …" if len(busy) > 6 else "")
            reason = "no_vehicle_free: " + (detail or "the hub has no vehicles")
            await self._set_reasons(
                session,
                hub_id,
                waiting,
                {domain.stop_key(s.booking_id, s.stop_id): reason for s in waiting},
                now,
            )
            return 0

        by_key = {domain.stop_key(s.booking_id, s.stop_id): s for s in waiting}
        instance = domain.wave_instance(
            hub_location=Point(hub.lat, hub.lon),
            stops=[
                StopDemand(key, Point(s.lat, s.lon), s.parcels, s.weight_kg, s.volume_m3)
                for key, s in by_key.items()
            ],
            vehicles=free,
            circuity=self.fleet.circuity_of(hub.city_id),
            service_minutes_per_stop=self.fleet.service_minutes(hub_id),
        )
        plan = await self.planner(instance, self.solver_time_limit_s)
        problems = check_plan(instance, plan)
        if problems:  # a guard that should never fire: publish nothing that breaks a limit
            log.error("plan for %s breaks limits (%s): using the greedy instead", hub_id, problems)
            plan = plan_wave(instance, time_limit_s=0)
        seq = await store.next_wave(session, hub_id, now)
        wave_id = domain.wave_id_for(hub_id, seq)
        types = {v.config.id: v.config.type for v in fleet}
        planned = 0
        for route in plan.routes:
            route_id = domain.route_id_for(wave_id, route.vehicle_id)
            route_stops = [by_key[k] for k in route.stop_keys]
            payload = RoutePlanned(
                route_id=route_id,
                hub_id=hub_id,
                vehicle_id=route.vehicle_id,
                city_id=hub.city_id,
                vehicle_type=types[route.vehicle_id],
                wave_id=wave_id,
                hub_location=GeoPoint(lat=hub.lat, lon=hub.lon),
                stops=[
                    RouteStop(
                        sequence=i,
                        booking_id=s.booking_id,
                        carrier_id=s.carrier_id,
                        stop_id=s.stop_id,
                        location=GeoPoint(lat=s.lat, lon=s.lon),
                        parcels=s.parcels,
                        weight_kg=s.weight_kg,
                        volume_m3=s.volume_m3,
                    )
                    for i, s in enumerate(route_stops, start=1)
                ],
                load_parcels=route.parcels,
                load_kg=round(route.weight_kg, 3),
                load_m3=round(route.volume_m3, 4),
                planned_km=round(route.km, 3),
                planned_duration_min=round(route.duration_min, 1),
                solver=plan.solver,
                objective_value=round(plan.objective, 3),
            )
            if not await store.add_route(
                session,
                id=route_id,
                hub_id=hub_id,
                wave_id=wave_id,
                vehicle_id=route.vehicle_id,
                planned=payload.model_dump(mode="json"),
                planned_at=now,
            ):
                log.warning("route %s exists already: not planned twice", route_id)
                continue
            for s in route_stops:
                await store.set_stop(
                    session,
                    s.booking_id,
                    s.stop_id,
                    now=now,
                    status=StopStatus.PLANNED,
                    route_id=route_id,
                    reason=None,
                )
            await self.emit(session, payload, hub_id=hub_id, now=now)
            planned += 1
            self.changed(
                session,
                hub_id,
                "route_planned",
                route_id=route_id,
                vehicle_id=route.vehicle_id,
                stops=len(route_stops),
                km=round(route.km, 2),
            )
        reasons = {u.key: f"{u.code}: {u.message}" for u in plan.unserved}
        await self._set_reasons(session, hub_id, waiting, reasons, now)
        log.info(
            "%s: wave %s (%s) planned %d routes, %d stops left, solver %s",
            hub_id,
            wave_id,
            why,
            planned,
            len(plan.unserved),
            plan.solver,
        )
        self.changed(
            session,
            hub_id,
            "wave",
            wave_id=wave_id,
            why=why,
            routes=planned,
            left=len(plan.unserved),
            solver=plan.solver,
        )
        return planned

    async def _set_reasons(
        self,
        session: AsyncSession,
        hub_id: str,
        waiting: list[store.StopRow],
        reasons: dict[str, str],
        now: datetime,
    ) -> None:
        changed = 0
        for s in waiting:
            reason = reasons.get(domain.stop_key(s.booking_id, s.stop_id))
            if reason is not None and reason != s.reason:
                await store.set_stop(session, s.booking_id, s.stop_id, now=now, reason=reason)
                changed += 1
        if changed:
            self.changed(session, hub_id, "reasons", stops=changed)
