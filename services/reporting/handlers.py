"""Booking and dispatch events -> reporting's projection (one transaction per event, with
the inbox claim; see services/runtime/consumer.py).

Every handler is idempotent on the business key (booking id, route id), so a re-sent
event with a new envelope id changes nothing, and the projection does not depend on how
the two topics interleave: a route may arrive before the booking it carries.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingNoShow,
    BookingRescheduled,
)
from contracts.dispatch import RouteCompleted, RoutePlanned
from services.reporting import domain, route_store, store
from services.reporting.factors import FactorCatalogue
from services.runtime.consumer import Delivery
from services.runtime.uow import UnitOfWork

log = logging.getLogger(__name__)


def _point(p: Any) -> domain.Point:
    return domain.Point(p.lat, p.lon)


class ReportingHandlers:
    def __init__(self, catalogue: FactorCatalogue) -> None:
        self.catalogue = catalogue

    # --- booking events ----------------------------------------------------------------

    async def on_booking_event(self, uow: UnitOfWork, delivery: Delivery) -> None:
        session = uow.session
        event = delivery.event
        data = event.data
        if isinstance(data, BookingConfirmed):
            await self.confirmed(session, data)
        elif isinstance(data, BookingCancelled | BookingNoShow):
            status = "cancelled" if isinstance(data, BookingCancelled) else "no_show"
            if not await store.set_consignment_status(session, data.booking_id, status):
                log.warning("%s for unknown booking %s ignored", event.type, data.booking_id)
        elif isinstance(data, BookingRescheduled):
            slot = data.slot_start
            moved = await store.reschedule_consignment(
                session,
                data.booking_id,
                slot_start_ms=domain.to_ms(slot),
                local_day=lambda tz: slot.astimezone(ZoneInfo(tz)).date().isoformat(),
                moves=data.moves,
            )
            if moved is None:
                log.warning("%s for unknown booking %s ignored", event.type, data.booking_id)
        else:
            return  # rejections, check-ins: not part of the emissions flows
        await store.record_input(
            session,
            event_id=event.id,
            event_type=event.type,
            data=data.model_dump(mode="json"),
            booking_id=data.booking_id,
        )

    async def confirmed(self, session: AsyncSession, data: BookingConfirmed) -> None:
        hub = data.hub
        await store.upsert_city(
            session,
            city_id=hub.city_id,
            name=hub.city_name,
            country=hub.country,
            timezone=hub.timezone,
        )
        await store.upsert_hub(
            session,
            hub_id=hub.hub_id,
            city_id=hub.city_id,
            name=hub.name,
            lat=hub.location.lat,
            lon=hub.location.lon,
        )
        c = data.consignment
        depot = _point(c.depot)
        hub_point = _point(hub.location)
        # each stop carries the consignment's weight in proportion to its parcels
        activity_kgm = sum(
            round(
                c.weight_kg
                * s.parcels
                / c.parcel_count
                * domain.great_circle_km(depot, _point(s.location))
                * 1000
            )
            for s in c.stops
        )
        local_day = data.slot_start.astimezone(ZoneInfo(hub.timezone)).date().isoformat()
        await store.add_consignment(
            session,
            booking_id=data.booking_id,
            carrier_id=data.carrier_id,
            hub_id=data.hub_id,
            city_id=hub.city_id,
            status="confirmed",
            parcel_count=c.parcel_count,
            stop_count=len(c.stops),
            weight_kg=c.weight_kg,
            volume_m3=c.volume_m3,
            slot_start_ms=domain.to_ms(data.slot_start),
            depot_lat=depot.lat,
            depot_lon=depot.lon,
            baseline_day=local_day,
            weight_g=round(c.weight_kg * 1000),
            activity_kgm=activity_kgm,
            trunk_activity_kgm=round(c.weight_kg * domain.great_circle_km(depot, hub_point) * 1000),
            # the tours of its carrier-day are computed when a report needs them
            derived_params=None,
        )
        await store.add_consignment_stops(
            session,
            [
                {
                    "booking_id": data.booking_id,
                    "stop_id": s.stop_id,
                    "lat": s.location.lat,
                    "lon": s.location.lon,
                    "parcels": s.parcels,
                }
                for s in c.stops
            ],
        )

    # --- dispatch events ---------------------------------------------------------------

    async def on_dispatch_event(self, uow: UnitOfWork, delivery: Delivery) -> None:
        session = uow.session
        event = delivery.event
        data = event.data
        if isinstance(data, RoutePlanned):
            await self.planned(session, data, at_ms=domain.to_ms(event.time))
        elif isinstance(data, RouteCompleted):
            await self.completed(session, data)
        else:
            return  # started, stop returned: nothing to count
        await store.record_input(
            session,
            event_id=event.id,
            event_type=event.type,
            data=data.model_dump(mode="json"),
            route_id=data.route_id,
        )

    async def planned(self, session: AsyncSession, data: RoutePlanned, *, at_ms: int) -> None:
        planned_m = round(data.planned_km * 1000)
        fresh = await route_store.add_route(
            session,
            route_id=data.route_id,
            hub_id=data.hub_id,
            city_id=data.city_id,
            vehicle_type=data.vehicle_type.value,
            planned_m=planned_m,
            planned_at_ms=at_ms,
            stop_count=len(data.stops),
        )
        if not fresh:
            return
        hub = _point(data.hub_location)
        loads = [domain.StopLoad(s.booking_id, _point(s.location), s.weight_kg) for s in data.stops]
        # circuity scales every distance alike: the shares do not depend on it
        shares = domain.allocation_shares(hub, loads, 1.0)
        metres = domain.apportion(planned_m, shares)
        trips = domain.apportion(1000, shares)
        per_booking: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "stops": 0,
                "claimed_stops": 0,
                "parcels": 0,
                "baseline_parcels": 0,
                "weight_kg": 0.0,
                "kgm": 0,
            }
        )
        for s in data.stops:
            row = per_booking[s.booking_id]
            row["carrier_id"] = s.carrier_id
            row["stops"] += 1
            row["parcels"] += s.parcels
            row["weight_kg"] += s.weight_kg
            row["kgm"] += round(
                s.weight_kg * domain.great_circle_km(hub, _point(s.location)) * 1000
            )
            if await route_store.claim_stop(
                session, booking_id=s.booking_id, stop_id=s.stop_id, route_id=data.route_id
            ):
                row["baseline_parcels"] += s.parcels
                row["claimed_stops"] += 1
        await route_store.add_route_consignments(
            session,
            [
                {
                    "route_id": data.route_id,
                    "booking_id": booking_id,
                    "city_id": data.city_id,
                    "hub_id": data.hub_id,
                    "carrier_id": row["carrier_id"],
                    "vehicle_type": data.vehicle_type.value,
                    "at_ms": at_ms,
                    "share": shares[booking_id],
                    "activity_tkm": row["kgm"] / 1e6,  # great-circle t.km (v1 column)
                    "activity_kgm": row["kgm"],
                    "trip_x1000": trips[booking_id],
                    "stops": row["stops"],
                    "parcels": row["parcels"],
                    "baseline_parcels": row["baseline_parcels"],
                    "claimed_stops": row["claimed_stops"],
                    "weight_kg": row["weight_kg"],
                    "alloc_m": metres[booking_id],
                    "alloc_wh": None,
                    "km_actual": False,
                    "delivered_stops": 0,
                    "failed_stops": 0,
                }
                for booking_id, row in sorted(per_booking.items())
            ],
        )

    async def completed(self, session: AsyncSession, data: RouteCompleted) -> None:
        route = await route_store.find_route(session, data.route_id)
        if route is None:
            # same topic and key (hub id) as RoutePlanned, so this only happens when the
            # plan was dead-lettered or predates retention: nothing to allocate it to.
            log.warning("RouteCompleted for unknown route %s ignored", data.route_id)
            return
        actual_m = round(data.actual_km * 1000)
        electric = data.vehicle_type.value in domain.ELECTRIC_VEHICLES
        energy_wh = (
            round(data.energy_kwh * 1000) if data.energy_kwh is not None and electric else None
        )
        completed_ms = domain.to_ms(data.completed_at)
        await route_store.complete_route(
            session,
            data.route_id,
            actual_m=actual_m,
            energy_wh=energy_wh,
            completed_at_ms=completed_ms,
        )
        rows = await route_store.route_allocations(session, data.route_id)
        shares = {r.booking_id: r.share for r in rows}
        metres = domain.apportion(actual_m, shares)
        wh = domain.apportion(energy_wh, shares) if energy_wh is not None else None
        delivered: dict[str, int] = defaultdict(int)
        failed: dict[str, int] = defaultdict(int)
        for ref in data.delivered:
            delivered[ref.booking_id] += 1
        for ref in data.failed:
            failed[ref.booking_id] += 1
        for r in rows:
            await route_store.update_allocation(
                session,
                data.route_id,
                r.booking_id,
                alloc_m=metres[r.booking_id],
                alloc_wh=wh[r.booking_id] if wh is not None else None,
                km_actual=True,
                at_ms=completed_ms,
                delivered_stops=delivered[r.booking_id],
                failed_stops=failed[r.booking_id],
            )
