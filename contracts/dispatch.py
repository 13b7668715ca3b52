"""Events the dispatch service publishes (through its outbox) to
``microhub.dispatch.events.v1`` (key: hub id). Reporting and dashboards read them."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from contracts.common import GeoPoint, Identifier, Integer
from contracts.envelope import Payload, message
from contracts.fleet import VehicleType
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
