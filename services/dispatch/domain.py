"""Dispatch rules (pure: no I/O, no clock): stops from consignments, when a wave is due,
route ids, what a failed delivery means, and how the solver's instance is built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contracts.booking import Consignment
from contracts.fleet import VehicleStatus
from services.dispatch.fleet import (
    VehicleConfig,
    charge_km_per_min,
    minutes_into_shift,
    shift_minutes_left,
)
from services.dispatch.solver import Point, StopDemand, VehicleSpec, WaveInstance
from services.dispatch.wave_policy import WavePolicy as WavePolicy
from services.dispatch.wave_policy import last_departure as last_departure
from services.dispatch.wave_policy import wave_due as wave_due

MAX_ATTEMPTS = 3


class StopStatus(StrEnum):
    EXPECTED = "expected"  # booking confirmed, consignment not at the hub yet
    WAITING = "waiting"  # checked in: waits for a vehicle
    PLANNED = "planned"  # on a planned route
    ON_ROUTE = "on_route"  # its route started
    FAILED = "failed"  # delivery failed; back in the queue when its route finishes
    DELIVERED = "delivered"
    RETURNED = "returned"  # given back to the carrier
    HELD = "held"  # kept out of the waves by the hub's dispatcher


class RouteStatus(StrEnum):
    PROPOSED = "proposed"  # planned, waiting for the dispatcher to release it (review)
    PLANNED = "planned"
    RUNNING = "running"
    COMPLETED = "completed"


ACTIVE_ROUTE = (RouteStatus.PROPOSED, RouteStatus.PLANNED, RouteStatus.RUNNING)


@dataclass(frozen=True)
class StopLoad:
    stop_id: str
    location: Point
    parcels: int
    weight_kg: float
    volume_m3: float


def split_consignment(consignment: Consignment) -> list[StopLoad]:
    """A consignment's weight and volume are only known in total: each stop gets its share
    by parcel count. Shares are differences of rounded *cumulative* amounts, so they are
    never negative and add up to the total exactly (rounding each share on its own can
    overshoot, leaving the last stop a negative remainder)."""
    total = consignment.parcel_count
    loads: list[StopLoad] = []
    parcels_so_far = 0
    kg_before = m3_before = 0.0
    for index, stop in enumerate(consignment.stops):
        parcels_so_far += stop.parcels
        last = index == len(consignment.stops) - 1
        fraction = parcels_so_far / total
        kg_upto = (
            consignment.weight_kg
            if last
            else min(round(consignment.weight_kg * fraction, 3), consignment.weight_kg)
        )
        m3_upto = (
            consignment.volume_m3
            if last
            else min(round(consignment.volume_m3 * fraction, 4), consignment.volume_m3)
        )
        kg_upto, m3_upto = max(kg_upto, kg_before), max(m3_upto, m3_before)
        loads.append(
            StopLoad(
                stop.stop_id,
                Point(stop.location.lat, stop.location.lon),
                stop.parcels,
                kg_upto - kg_before,
                m3_upto - m3_before,
            )
        )
        kg_before, m3_before = kg_upto, m3_upto
    return loads


def wave_id_for(hub_id: str, sequence: int) -> str:
    return f"{hub_id}:w{sequence:05d}"


def route_id_for(wave_id: str, vehicle_id: str, *, trip: int = 1) -> str:
    """Deterministic from (hub, wave, vehicle, trip): replanning the same wave after a
    crash or a redelivery produces the same ids, which the routes table refuses twice. A
    vehicle's first trip of a wave keeps the id it always had; later ones add ``:t<n>``."""
    return f"{wave_id}:{vehicle_id}" if trip == 1 else f"{wave_id}:{vehicle_id}:t{trip}"


def stop_key(booking_id: str, stop_id: str) -> str:
    return f"{booking_id}/{stop_id}"


def after_failure(attempts: int) -> StopStatus:
    """Where a stop goes when its route finishes after ``attempts`` failed deliveries."""
    return StopStatus.RETURNED if attempts >= MAX_ATTEMPTS else StopStatus.WAITING


@dataclass(frozen=True)
class VehicleState:
    config: VehicleConfig
    status: VehicleStatus
    battery_pct: float | None
    busy_route: str | None  # an active (planned or running) route
    since: datetime | None = None  # when its status last changed


def vehicle_spec(vehicle: VehicleState, *, now: datetime, timezone: str) -> VehicleSpec | None:
    """The vehicle as the solver sees it at ``now``, or None when it cannot take a route
    (not available, on a route, off shift)."""
    if vehicle.status is not VehicleStatus.AVAILABLE or vehicle.busy_route is not None:
        return None
    minutes = shift_minutes_left(vehicle.config, now, timezone)
    if minutes <= 0:
        return None
    c = vehicle.config
    pct = c.charge_at_shift_start_pct if vehicle.battery_pct is None else vehicle.battery_pct
    charge = pct / 100
    rule = c.breaks
    return VehicleSpec(
        vehicle_id=c.id,
        capacity_parcels=c.capacity.parcels,
        capacity_kg=c.capacity.kg,
        capacity_m3=c.capacity.m3,
        range_km=c.range_km * charge,
        speed_kmh=c.speed_kmh,
        available_min=minutes,
        max_trips=c.max_trips,
        full_range_km=c.range_km,
        charge_km_per_min=charge_km_per_min(c),
        break_after_min=None if rule is None else rule.after_hours * 60,
        break_min=0.0 if rule is None else rule.minutes,
        worked_min=0.0 if rule is None else worked_since_break(vehicle, now, timezone),
    )


def worked_since_break(vehicle: VehicleState, now: datetime, timezone: str) -> float:
    """Work since the driver's last break, as far as dispatch can tell: none when the
    vehicle has stood free at the hub for a break's length; otherwise (dispatch does not
    know when a break was taken) everything since the shift started, which can only
    bring a break forward, never skip one."""
    rule = vehicle.config.breaks
    if rule is None:
        return 0.0
    idle = None if vehicle.since is None else (now - vehicle.since).total_seconds() / 60
    if idle is not None and idle >= rule.minutes:
        return 0.0
    return minutes_into_shift(vehicle.config, now, timezone)


def why_not_free(vehicle: VehicleState, *, now: datetime, timezone: str) -> str | None:
    if vehicle.busy_route is not None:
        return f"on route {vehicle.busy_route}"
    if vehicle.status is not VehicleStatus.AVAILABLE:
        return vehicle.status.value
    if shift_minutes_left(vehicle.config, now, timezone) <= 0:
        return "off shift"
    return None


def wave_instance(
    *,
    hub_location: Point,
    stops: Sequence[StopDemand],
    vehicles: Sequence[VehicleSpec],
    circuity: float,
    service_minutes_per_stop: float,
    load_minutes_per_trip: float = 0.0,
) -> WaveInstance:
    # Stable order, so the same queue gives the same instance (and the greedy the same plan).
    return WaveInstance(
        depot=hub_location,
        stops=sorted(stops, key=lambda s: s.key),
        vehicles=sorted(vehicles, key=lambda v: v.vehicle_id),
        circuity=circuity,
        service_min_per_stop=service_minutes_per_stop,
        load_min_per_trip=load_minutes_per_trip,
    )
