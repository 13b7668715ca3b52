"""Booking events and vehicle telemetry in; waves planned and routes followed; dispatch
events out through the outbox. Everything one event causes is written in the consumer's
transaction, and decisions use the event's time, never the wall clock."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from contracts.booking import (
    BookingCancelled,
    BookingConfirmed,
    BookingNoShow,
    BookingRescheduled,
    BookingStopTerms,
    ConsignmentCheckedIn,
)
from contracts.fleet import VehicleStatus, VehicleStatusChanged
from services.dispatch import domain, store
from services.dispatch.changes import ChangeLog
from services.dispatch.domain import RouteStatus, StopStatus
from services.dispatch.routes import RouteFollowing
from services.dispatch.waves import WavePlanning
from services.runtime.consumer import Delivery
from services.runtime.uow import UnitOfWork

log = logging.getLogger(__name__)


class DispatchHandlers:
    """Entry points of both consumers, a handler per message type. Route following and
    wave planning are objects of their own (routes.py, waves.py)."""

    def __init__(self, *, routes: RouteFollowing, waves: WavePlanning, changes: ChangeLog) -> None:
        self.routes = routes
        self.waves = waves
        self.changes = changes

    async def _then_plan(self, uow: UnitOfWork, hub_id: str, now: datetime) -> None:
        """After every event of a hub: its clock moves to the event's time, and a wave is
        planned if one is due (so a replay plans what the live run planned)."""
        await store.advance_clock(uow.session, hub_id, now)
        await self.waves.maybe_plan(uow, hub_id, now)

    # ----------------------------------------------------------- booking events ------

    async def on_confirmed(self, uow: UnitOfWork, delivery: Delivery) -> None:
        event: BookingConfirmed = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        await self.expect(uow, event, now)
        await self._then_plan(uow, event.hub_id, now)

    async def on_checked_in(self, uow: UnitOfWork, delivery: Delivery) -> None:
        event: ConsignmentCheckedIn = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        await store.lock_hub(uow.session, event.hub_id)
        await self.check_in(uow, event, now)
        await self._then_plan(uow, event.hub_id, now)

    async def on_cancelled_or_no_show(self, uow: UnitOfWork, delivery: Delivery) -> None:
        event: BookingCancelled | BookingNoShow = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        await store.lock_hub(uow.session, event.hub_id)
        removed = await store.remove_open_stops(uow.session, event.booking_id)
        if removed:
            self.changes.record(
                uow.session,
                event.hub_id,
                "stops_removed",
                booking_id=event.booking_id,
                stops=removed,
                why="cancelled" if isinstance(event, BookingCancelled) else "no_show",
            )
        await self._then_plan(uow, event.hub_id, now)

    async def on_rescheduled(self, uow: UnitOfWork, delivery: Delivery) -> None:
        """A booking moved to another slot: its stops not at the hub yet are expected at
        the new slot (an earlier move published again changes nothing)."""
        event: BookingRescheduled = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        await store.lock_hub(uow.session, event.hub_id)
        moved = await store.reschedule_expected_stops(
            uow.session,
            event.booking_id,
            expected_at=event.slot_start,
            moves=event.moves,
            now=now,
        )
        if moved:
            self.changes.record(
                uow.session,
                event.hub_id,
                "stops_rescheduled",
                booking_id=event.booking_id,
                stops=moved,
                expected_at=event.slot_start.astimezone(UTC).isoformat(),
            )
        await self._then_plan(uow, event.hub_id, now)

    async def on_stop_terms(self, uow: UnitOfWork, delivery: Delivery) -> None:
        """A v2 booking's stop kinds and time windows, right after its confirmation."""
        event: BookingStopTerms = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        await store.lock_hub(uow.session, event.hub_id)
        known = {s.stop_id: s for s in await store.stops_of_booking(uow.session, event.booking_id)}
        changed = 0
        for terms in event.stops:
            stop = known.get(terms.stop_id)
            if stop is None or stop.status not in (StopStatus.EXPECTED, StopStatus.WAITING):
                continue
            await store.set_stop(
                uow.session,
                stop.booking_id,
                stop.stop_id,
                now=now,
                kind=terms.kind.value,
                window_start=terms.window.start if terms.window else None,
                window_end=terms.window.end if terms.window else None,
            )
            changed += 1
        if changed:
            self.changes.record(
                uow.session, event.hub_id, "stop_terms", booking_id=event.booking_id, stops=changed
            )
        await self._then_plan(uow, event.hub_id, now)

    async def on_other_booking_event(self, uow: UnitOfWork, delivery: Delivery) -> None:
        """Rejections: nothing to dispatch, but the hub's event time moves on."""
        event = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        await store.lock_hub(uow.session, event.hub_id)
        await self._then_plan(uow, event.hub_id, now)

    async def expect(self, uow: UnitOfWork, event: BookingConfirmed, now: datetime) -> None:
        hub = event.hub
        await store.upsert_hub(
            uow.session,
            hub_id=hub.hub_id,
            name=hub.name,
            city_id=hub.city_id,
            timezone=hub.timezone,
            lat=hub.location.lat,
            lon=hub.location.lon,
        )
        await store.lock_hub(uow.session, hub.hub_id)
        added = 0
        slot = event.slot_start.astimezone(UTC)
        for load in domain.split_consignment(event.consignment):
            added += await store.add_stop(
                uow.session,
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
            self.changes.record(
                uow.session,
                event.hub_id,
                "stops_expected",
                booking_id=event.booking_id,
                stops=added,
            )

    async def check_in(self, uow: UnitOfWork, event: ConsignmentCheckedIn, now: datetime) -> None:
        known = await store.stops_of_booking(uow.session, event.booking_id)
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
                    uow.session,
                    stop.booking_id,
                    stop.stop_id,
                    now=now,
                    status=StopStatus.WAITING,
                    queued_at=now,
                    reason="waiting for the next wave",
                )
                queued += 1
            elif stop.status is StopStatus.HELD and stop.queued_at is None:
                # at the hub now, still held: released from the hold, it waits
                await store.set_stop(
                    uow.session, stop.booking_id, stop.stop_id, now=now, queued_at=now
                )
        if queued:
            self.changes.record(
                uow.session,
                event.hub_id,
                "stops_waiting",
                booking_id=event.booking_id,
                stops=queued,
            )

    # --------------------------------------------------------------- telemetry ------

    async def _vehicle_hub(self, uow: UnitOfWork, t: Any) -> str | None:
        """The hub of the reporting vehicle (locked), or None: not in any fleet."""
        hub_id = await store.vehicle_hub(uow.session, t.vehicle_id)
        if hub_id is None:
            log.warning("telemetry from vehicle %s, not in any hub's fleet: ignored", t.vehicle_id)
            return None
        if hub_id != t.hub_id:
            log.warning(
                "vehicle %s reports hub %s but belongs to %s: using %s",
                t.vehicle_id,
                t.hub_id,
                hub_id,
                hub_id,
            )
        await store.lock_hub(uow.session, hub_id)
        return hub_id

    async def on_vehicle_status(self, uow: UnitOfWork, delivery: Delivery) -> None:
        t: VehicleStatusChanged = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        hub_id = await self._vehicle_hub(uow, t)
        if hub_id is None:
            return
        await store.set_vehicle_status(
            uow.session, t.vehicle_id, status=t.status, now=now, battery_pct=t.battery_pct
        )
        self.changes.record(
            uow.session,
            hub_id,
            "vehicle",
            vehicle_id=t.vehicle_id,
            status=t.status.value,
            battery_pct=t.battery_pct,
        )
        if t.status is VehicleStatus.ON_ROUTE:
            route = await store.active_route_of(uow.session, t.vehicle_id)
            if route is not None and route.status is RouteStatus.PLANNED:
                await self.routes.start(uow, route, now)
        await self._then_plan(uow, hub_id, now)

    async def on_stop_delivered(self, uow: UnitOfWork, delivery: Delivery) -> None:
        await self._on_route_report(uow, delivery, self.routes.delivered)

    async def on_stop_failed(self, uow: UnitOfWork, delivery: Delivery) -> None:
        await self._on_route_report(uow, delivery, self.routes.failed)

    async def on_route_finished(self, uow: UnitOfWork, delivery: Delivery) -> None:
        await self._on_route_report(uow, delivery, self.routes.finish)

    async def _on_route_report(
        self,
        uow: UnitOfWork,
        delivery: Delivery,
        follow: Callable[[UnitOfWork, store.RouteRow, Any, datetime], Awaitable[None]],
    ) -> None:
        """A report about one of the vehicle's routes: the route starts if it had not
        (the first report of a route is its start), then ``follow``."""
        t = delivery.event.data
        now = delivery.event.time.astimezone(UTC)
        hub_id = await self._vehicle_hub(uow, t)
        if hub_id is None:
            return
        route = await store.get_route(uow.session, t.route_id)
        if route is None or route.vehicle_id != t.vehicle_id:
            log.warning(
                "%s for route %s of vehicle %s that dispatch did not plan: ignored",
                type(t).__name__,
                t.route_id,
                t.vehicle_id,
            )
            return
        if route.status in (RouteStatus.COMPLETED, RouteStatus.PROPOSED):
            log.warning(
                "%s for %s route %s: ignored", type(t).__name__, route.status.value, route.id
            )
            return
        if route.status is RouteStatus.PLANNED:
            await self.routes.start(uow, route, now)
        await follow(uow, route, t, now)
        await self._then_plan(uow, hub_id, now)
