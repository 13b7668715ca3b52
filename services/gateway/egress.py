"""What each carrier is told: views of the platform's internal events, one carrier at a time.

- A booking event concerns one booking of one carrier: it goes to that carrier unchanged.
- A dispatch event may concern stops of several carriers (a route consolidates them). It
  is broken into *stop updates* (``STOP_UPDATES``: one small function per event type), and
  each carrier gets a ``DeliveryStatus`` per stop of its own, never a route's other stops,
  their carriers or where their recipients live.

A new dispatch event type (proof of delivery, per-stop status, a ``.v2``) is one entry in
``STOP_UPDATES``: a function from its payload to the stop updates it means. An update that
names its carrier is routed by it; one that names only a route, or a booking and stop, is
routed by the stops of the routes planned so far (the gateway keeps their ids).

- Dispatch's own per-stop record, ``microhub.dispatch.stop_updated.v1`` (planned with the
  ETA, ETA changed, delivered or collected with the proof, failed, returned, back at the
  hub), is about one stop of one carrier and names it: it is passed on unchanged, to that
  carrier alone (``PASSED_ON``). ``DeliveryStatus`` stays besides it: the gateway's own
  summary from the route events, one small vocabulary for clients written against it;
  ``stop_updated.v1`` is the richer, per-stop one (docs/dispatch.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from contracts.booking.commands import booking_id_for
from contracts.carriers import DeliveryState, DeliveryStatus, ProofOfDelivery
from contracts.common import GeoPoint
from contracts.dispatch import (
    RouteCompleted,
    RoutePlanned,
    RouteStarted,
    StopReturned,
    StopUpdated,
)
from contracts.envelope import Payload


@dataclass(frozen=True)
class View:
    """A message for one carrier, keyed by the booking it is about."""

    carrier_id: str
    key: str
    payload: Payload


def booking_views(payload: Any) -> list[View]:
    """A booking event, to the carrier whose booking it is; a hub's own (a closure
    declared or lifted) names no carrier and goes to none."""
    if not hasattr(payload, "carrier_id"):
        return []
    booking_id = getattr(payload, "booking_id", None) or booking_id_for(
        payload.carrier_id, payload.carrier_reference
    )
    return [View(payload.carrier_id, booking_id, payload)]


def stop_views(update: StopUpdated) -> list[View]:
    """A stop's update, to its carrier: it names the carrier, one booking and one stop of
    it, and holds nothing of any other stop (the proof is of this stop's delivery)."""
    return [View(update.carrier_id, update.booking_id, update)]


# dispatch event type -> the views it is passed on as, unchanged
PASSED_ON: dict[type[Payload], Callable[[Any], list[View]]] = {StopUpdated: stop_views}


@dataclass(frozen=True)
class StopUpdate:
    """What a dispatch event says about one stop; ``booking_id``/``stop_id`` None: every
    stop of ``route_id``; ``carrier_id`` None: whoever's stop it is."""

    state: DeliveryState
    route_id: str | None = None
    booking_id: str | None = None
    stop_id: str | None = None
    carrier_id: str | None = None
    hub_id: str | None = None
    parcels: int | None = None
    eta: datetime | None = None
    reason: str | None = None
    attempts: int | None = None
    proof_of_delivery: ProofOfDelivery | None = None
    at: datetime | None = None  # default: the event's time


def _km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance: ETAs only share the planned duration out along the route."""
    la1, la2 = math.radians(a.lat), math.radians(b.lat)
    dla, dlo = la2 - la1, math.radians(b.lon - a.lon)
    h = math.sin(dla / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(dlo / 2) ** 2
    return 12742.0 * math.asin(min(1.0, math.sqrt(h)))


def planned(route: RoutePlanned, at: datetime) -> list[StopUpdate]:
    """Each stop with an estimated arrival: the route's planned duration, from ``at``,
    shared out by the distance driven to the stop (hub, stops in order, back to the hub)."""
    points = [route.hub_location, *(s.location for s in route.stops), route.hub_location]
    legs = [_km(a, b) for a, b in itertools.pairwise(points)]
    total = sum(legs) or 1.0
    duration = timedelta(minutes=route.planned_duration_min)
    updates, driven = [], 0.0
    for stop, leg in zip(route.stops, legs, strict=False):
        driven += leg
        updates.append(
            StopUpdate(
                DeliveryState.PLANNED,
                route_id=route.route_id,
                booking_id=stop.booking_id,
                stop_id=stop.stop_id,
                carrier_id=stop.carrier_id,
                hub_id=route.hub_id,
                parcels=stop.parcels,
                eta=at + duration * (driven / total),
            )
        )
    return updates


def started(route: RouteStarted, at: datetime) -> list[StopUpdate]:
    return [
        StopUpdate(DeliveryState.OUT_FOR_DELIVERY, route_id=route.route_id, at=route.started_at)
    ]


def completed(route: RouteCompleted, at: datetime) -> list[StopUpdate]:
    done = [(DeliveryState.DELIVERED, ref) for ref in route.delivered]
    done += [(DeliveryState.FAILED, ref) for ref in route.failed]
    return [
        StopUpdate(
            state,
            route_id=route.route_id,
            booking_id=ref.booking_id,
            stop_id=ref.stop_id,
            at=route.completed_at,
        )
        for state, ref in done
    ]


def returned(stop: StopReturned, at: datetime) -> list[StopUpdate]:
    return [
        StopUpdate(
            DeliveryState.RETURNED,
            booking_id=stop.booking_id,
            stop_id=stop.stop_id,
            carrier_id=stop.carrier_id,
            hub_id=stop.hub_id,
            reason=stop.reason,
            attempts=stop.attempts,
        )
    ]


# dispatch event type -> its stop updates (payload, event time)
STOP_UPDATES: dict[type[Payload], Callable[[Any, datetime], list[StopUpdate]]] = {
    RoutePlanned: planned,
    RouteStarted: started,
    RouteCompleted: completed,
    StopReturned: returned,
}


@dataclass(frozen=True)
class KnownStop:
    """A planned stop, as the gateway keeps it (ids only)."""

    route_id: str
    booking_id: str
    stop_id: str
    carrier_id: str
    hub_id: str
    parcels: int


def resolve(updates: Iterable[StopUpdate], known: Iterable[KnownStop]) -> list[StopUpdate]:
    """Updates naming a carrier stay; a route's update becomes one per stop of the route;
    a stop's update gets the carrier, hub and parcels of that stop. What matches no known
    stop is dropped: nobody can be told about it without guessing whose it is."""
    stops = list(known)
    by_route: dict[str, list[KnownStop]] = {}
    by_stop: dict[tuple[str, str], KnownStop] = {}
    for stop in stops:
        by_route.setdefault(stop.route_id, []).append(stop)
        by_stop[stop.booking_id, stop.stop_id] = stop
    resolved = []
    for update in updates:
        if update.carrier_id is not None and update.booking_id is not None:
            resolved.append(update)
        elif update.booking_id is None:
            resolved += [_with(update, s) for s in by_route.get(update.route_id or "", [])]
        elif (update.booking_id, update.stop_id or "") in by_stop:
            resolved.append(_with(update, by_stop[update.booking_id, update.stop_id or ""]))
    return resolved


def _with(update: StopUpdate, stop: KnownStop) -> StopUpdate:
    return replace(
        update,
        route_id=update.route_id or stop.route_id,
        booking_id=stop.booking_id,
        stop_id=stop.stop_id,
        carrier_id=stop.carrier_id,
        hub_id=update.hub_id or stop.hub_id,
        parcels=update.parcels or stop.parcels,
    )


def status_views(updates: Iterable[StopUpdate], at: datetime) -> list[View]:
    """A ``DeliveryStatus`` per resolved stop update, to the stop's carrier."""
    views = []
    for u in updates:
        assert u.carrier_id is not None and u.booking_id is not None and u.stop_id is not None
        assert u.hub_id is not None, "every stop update is resolved to its hub"
        status = DeliveryStatus(
            carrier_id=u.carrier_id,
            booking_id=u.booking_id,
            stop_id=u.stop_id,
            hub_id=u.hub_id,
            state=u.state,
            at=u.at or at,
            route_id=u.route_id,
            parcels=u.parcels,
            eta=u.eta,
            reason=u.reason,
            attempts=u.attempts,
            proof_of_delivery=u.proof_of_delivery,
        )
        views.append(View(u.carrier_id, u.booking_id, status))
    return views
