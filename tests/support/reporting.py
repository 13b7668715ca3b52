"""Booking and dispatch events as the booking and dispatch services publish them, for the
reporting tests (built with the contracts models, like those services do)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.booking.commands import Consignment, DeliveryStop
from contracts.booking.events import BookingCancelled, BookingConfirmed, HubSummary
from contracts.common import GeoPoint
from contracts.dispatch import RouteCompleted, RoutePlanned, RouteStop, StopRef
from contracts.envelope import CloudEvent, decode, encode, new_event
from contracts.topics import BOOKING_EVENTS

BERLIN_HUBS = {
    "ber-westhafen": (52.5380, 13.3410),
    "ber-suedkreuz": (52.4752, 13.3653),
}


def hub_summary(hub_id: str = "ber-westhafen") -> HubSummary:
    lat, lon = BERLIN_HUBS[hub_id]
    return HubSummary(
        hub_id=hub_id,
        name=f"{hub_id} micro-hub",
        city_id="berlin",
        city_name="Berlin",
        country="DE",
        timezone="Europe/Berlin",
        location=GeoPoint(lat=lat, lon=lon),
    )


def confirmed(
    booking_id: str,
    *,
    carrier: str,
    depot: tuple[float, float],
    stops: list[tuple[str, tuple[float, float], int]],
    weight_kg: float,
    volume_m3: float,
    hub_id: str = "ber-westhafen",
    slot: datetime | None = None,
) -> BookingConfirmed:
    slot = slot or datetime(2026, 10, 14, 6, tzinfo=UTC)
    return BookingConfirmed(
        booking_id=booking_id,
        carrier_id=carrier,
        carrier_reference=f"ref-{booking_id}",
        hub_id=hub_id,
        slot_start=slot,
        slot_end=slot + timedelta(minutes=30),
        hub=hub_summary(hub_id),
        consignment=Consignment(
            parcel_count=sum(p for _s, _l, p in stops),
            weight_kg=weight_kg,
            volume_m3=volume_m3,
            depot=GeoPoint(lat=depot[0], lon=depot[1]),
            stops=[
                DeliveryStop(stop_id=s, location=GeoPoint(lat=loc[0], lon=loc[1]), parcels=p)
                for s, loc, p in stops
            ],
        ),
    )


def cancelled(booking: BookingConfirmed) -> BookingCancelled:
    return BookingCancelled(
        booking_id=booking.booking_id,
        carrier_id=booking.carrier_id,
        carrier_reference=booking.carrier_reference,
        hub_id=booking.hub_id,
        slot_start=booking.slot_start,
        late=False,
    )


def planned(
    route_id: str,
    *,
    vehicle: str,
    km: float,
    stops: list[tuple[BookingConfirmed, str, float]],
    hub_id: str = "ber-westhafen",
) -> RoutePlanned:
    lat, lon = BERLIN_HUBS[hub_id]
    route_stops = []
    for seq, (booking, stop_id, weight) in enumerate(stops, 1):
        stop = next(s for s in booking.consignment.stops if s.stop_id == stop_id)
        route_stops.append(
            RouteStop(
                sequence=seq,
                booking_id=booking.booking_id,
                carrier_id=booking.carrier_id,
                stop_id=stop_id,
                location=stop.location,
                parcels=stop.parcels,
                weight_kg=weight,
                volume_m3=0.1,
            )
        )
    return RoutePlanned(
        route_id=route_id,
        hub_id=hub_id,
        vehicle_id=f"veh-{route_id}",
        city_id="berlin",
        vehicle_type=vehicle,
        wave_id="wave-1",
        hub_location=GeoPoint(lat=lat, lon=lon),
        stops=route_stops,
        load_parcels=sum(s.parcels for s in route_stops),
        load_kg=sum(s.weight_kg for s in route_stops),
        load_m3=0.1 * len(route_stops),
        planned_km=km,
        planned_duration_min=90,
        solver="test",
        objective_value=km,
    )


def completed(
    plan: RoutePlanned,
    *,
    at: datetime,
    actual_km: float,
    energy_kwh: float | None,
    failed: set[str] = frozenset(),
) -> RouteCompleted:
    refs = [StopRef(booking_id=s.booking_id, stop_id=s.stop_id) for s in plan.stops]
    return RouteCompleted(
        route_id=plan.route_id,
        hub_id=plan.hub_id,
        vehicle_id=plan.vehicle_id,
        city_id=plan.city_id,
        vehicle_type=plan.vehicle_type,
        completed_at=at,
        planned_km=plan.planned_km,
        actual_km=actual_km,
        energy_kwh=energy_kwh,
        delivered=[r for r in refs if r.stop_id not in failed],
        failed=[r for r in refs if r.stop_id in failed],
    )


def envelope(payload: Any, *, time: datetime, event_id: str | None = None) -> CloudEvent[Any]:
    source = "booking" if payload.topic == BOOKING_EVENTS.name else "dispatch"
    return new_event(
        payload, source=f"microhub/{source}", subject=payload.hub_id, time=time, event_id=event_id
    )


async def apply(service: Any, event: CloudEvent[Any]) -> bool:
    """One event through the reporting consumer's apply path (decoded from the wire bytes,
    inbox claim, handler, one unit of work), without Kafka. False when deduplicated."""
    wire = decode(encode(event))
    consumer = next(
        c for c in service.consumers if c.topic == service.settings.topic(wire.data.topic)
    )
    before = consumer.stats.duplicates
    await service.handle(wire)
    return consumer.stats.duplicates == before
