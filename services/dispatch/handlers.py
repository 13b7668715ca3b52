"""Booking events and vehicle telemetry in; waves planned and routes followed; dispatch
events out through the outbox. Everything one event causes is written in the consumer's
transaction, and decisions use the event's time, never the wall clock."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking import (
    BookingCancelled,
    BookingConfirmed,
    BookingNoShow,
    ConsignmentCheckedIn,
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
from services.dispatch.changes import ChangeLog
from services.dispatch.domain import RouteStatus, StopStatus, WavePolicy
from services.dispatch.fleet import FleetFile
from services.dispatch.routes import RouteFollowing
from services.dispatch.waves import Planner, WavePlanning, plan_in_process
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


# built once: lock_hub runs for every event
_LOCK_HUB = (
    update(store.hubs)
    .where(store.hubs.c.id == bindparam("b_id"))
    .values(wave_seq=store.hubs.c.wave_seq)
)


class DispatchHandlers(RouteFollowing, WavePlanning):
    """Entry points of both consumers; route following and wave planning live in
    routes.py and waves.py."""

    def __init__(
        self,
        *,
        policy: WavePolicy,
        solver_time_limit_s: float,
        fleet: FleetFile,
        changes: ChangeLog,
        planner: Planner = plan_in_process,
        events_topic: str = DISPATCH_EVENTS.name,
    ) -> None:
        self.policy = policy
        self.solver_time_limit_s = solver_time_limit_s
        self.fleet = fleet
        self.changes = changes
        self.planner = planner
        self.events_topic = events_topic

    # ----------------------------------------------------------------- plumbing ------

    async def emit(
        self, session: AsyncSession, payload: Payload, *, hub_id: str, now: datetime
    ) -> None:
        event = new_event(payload, source=SOURCE, subject=hub_id, time=now)
        await enqueue(session, store.outbox, event, topic=self.events_topic, key=hub_id)

    def changed(self, session: AsyncSession, hub_id: str, kind: str, **detail: Any) -> None:
        """Note a change for the live queue views: written to the change log in this
        transaction, so a viewer (in any process) never sees what was rolled back."""
        self.changes.record(session, hub_id, kind, **detail)

    @staticmethod
    async def lock_hub(session: AsyncSession, hub_id: str) -> None:
        """Serialise everything about one hub: the bookings and the telemetry consumers
        (and the wave timer) may touch the same hub at once. A no-op UPDATE takes the row
        lock on PostgreSQL and the write lock on SQLite, until commit."""
        await session.execute(_LOCK_HUB, {"b_id": hub_id})

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
