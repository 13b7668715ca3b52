"""Events the dispatch service publishes (through its outbox) to
``microhub.dispatch.events.v1`` (key: hub id). Reporting and dashboards read them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from contracts.booking.commands import StopKind, TimeWindow
from contracts.common import GeoPoint, Identifier, Integer
from contracts.envelope import Payload, message
from contracts.fleet import ProofOfDelivery, VehicleType
from contracts.topics import DISPATCH_EVENTS


class RouteStop(Payload):
    sequence: Integer = Field(ge=1)
    booking_id: str
    carrier_id: Identifier
    stop_id: Identifier
    location: GeoPoint
    parcels: Integer = Field(ge=1)
    weight_kg: float = Field(ge=0)
    volume_m3: float = Field(ge=0)


class StopRef(Payload):
    booking_id: str
    stop_id: Identifier


class _RouteEvent(Payload):
    route_id: str = Field(min_length=1, max_length=100)
    hub_id: Identifier
    vehicle_id: Identifier


@message("microhub.dispatch.route_planned.v1", DISPATCH_EVENTS.name)
class RoutePlanned(_RouteEvent):
    city_id: Identifier
    vehicle_type: VehicleType
    wave_id: str
    hub_location: GeoPoint
    stops: list[RouteStop] = Field(min_length=1)
    load_parcels: Integer = Field(ge=0)
    load_kg: float = Field(ge=0)
    load_m3: float = Field(ge=0)
    planned_km: float = Field(
        ge=0, description="Hub -> stops -> hub, road km (haversine x circuity)."
    )
    planned_duration_min: float = Field(ge=0)
    solver: str = Field(description="e.g. ortools-guided-local-search, greedy-fallback")
    objective_value: float


@message("microhub.dispatch.route_started.v1", DISPATCH_EVENTS.name)
class RouteStarted(_RouteEvent):
    started_at: AwareDatetime


@message("microhub.dispatch.route_completed.v1", DISPATCH_EVENTS.name)
class RouteCompleted(_RouteEvent):
    city_id: Identifier
    vehicle_type: VehicleType
    completed_at: AwareDatetime
    planned_km: float = Field(ge=0)
    actual_km: float = Field(ge=0)
    energy_kwh: float | None = Field(default=None, ge=0, description="None when not measured.")
    delivered: list[StopRef] = Field(default_factory=list)
    failed: list[StopRef] = Field(default_factory=list)


@message("microhub.dispatch.stop_returned.v1", DISPATCH_EVENTS.name)
class StopReturned(Payload):
    """A stop that failed too often (or cannot be served) goes back to its carrier."""

    hub_id: Identifier
    booking_id: str
    carrier_id: Identifier
    stop_id: Identifier
    attempts: Integer = Field(ge=0)
    reason: str


class StopProgress(StrEnum):
    PLANNED = "planned"  # on a planned route, with its ETA
    ETA_CHANGED = "eta_changed"  # its route runs late (or early): a new ETA
    DELIVERED = "delivered"  # with the proof of delivery when the vehicle sent one
    COLLECTED = "collected"  # a pickup, on board
    FAILED = "failed"  # an attempt failed; it goes back to the queue (or is returned)
    RETURNED = "returned"  # given back to the carrier at the hub
    AT_HUB = "at_hub"  # a collected pickup arrived at the hub, for the carrier


@message("microhub.dispatch.stop_updated.v1", DISPATCH_EVENTS.name)
class StopUpdated(Payload):
    """What happened to one stop, for its carrier: planned (with the ETA), a new ETA when
    its route runs late, delivered or collected (with the proof), failed, returned,
    back at the hub. Keyed by hub id like every dispatch event; a carrier reads the stops
    whose ``carrier_id`` is its own."""

    hub_id: Identifier
    carrier_id: Identifier
    booking_id: str
    stop_id: Identifier
    kind: StopKind = StopKind.DELIVERY
    status: StopProgress
    at: AwareDatetime = Field(description="when it happened (event time)")
    route_id: str | None = Field(default=None, max_length=100)
    vehicle_id: Identifier | None = None
    eta: AwareDatetime | None = Field(default=None, description="when service should start")
    window: TimeWindow | None = None
    proof: ProofOfDelivery | None = None
    reason: str | None = Field(default=None, max_length=500)
    attempts: Integer = Field(default=0, ge=0)


class DispatcherActionKind(StrEnum):
    HOLD = "hold"  # keep a waiting stop out of the waves
    UNHOLD = "unhold"  # back into the queue
    PIN = "pin"  # only this vehicle may take the stop (kept through re-plans)
    UNPIN = "unpin"
    MOVE = "move"  # a stop from one proposed route to another
    REPLAN = "replan"  # drop the hub's proposed routes (if any) and plan a wave now
    RELEASE = "release"  # a proposed wave goes out to the vehicles


@message("microhub.dispatch.dispatcher_action.v1", DISPATCH_EVENTS.name)
class DispatcherAction(Payload):
    """What a hub's dispatcher did, who and why: the audit trail of manual dispatch."""

    hub_id: Identifier
    action: DispatcherActionKind
    by: str = Field(min_length=1, max_length=200, description="the API key's name")
    reason: str = Field(min_length=1, max_length=500)
    at: AwareDatetime
    booking_id: str | None = None
    stop_id: Identifier | None = None
    vehicle_id: Identifier | None = None
    route_id: str | None = Field(default=None, max_length=100)
    wave_id: str | None = None
    routes: list[str] = Field(default_factory=list, description="routes released or replanned")
