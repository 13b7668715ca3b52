"""Telemetry vehicle apps (or the simulator) publish to ``microhub.fleet.telemetry.v1``
(key: vehicle id). The dispatch service consumes it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from contracts.common import GeoPoint, Identifier
from contracts.envelope import Payload, message
from contracts.topics import FLEET_TELEMETRY


class VehicleType(StrEnum):
    E_CARGO_BIKE = "e_cargo_bike"
    E_TRIKE = "e_trike"
    E_VAN = "e_van"
    DIESEL_VAN = "diesel_van"


class VehicleStatus(StrEnum):
    AVAILABLE = "available"
    CHARGING = "charging"
    LOADING = "loading"
    ON_ROUTE = "on_route"
    OFF_SHIFT = "off_shift"


class _Telemetry(Payload):
    vehicle_id: Identifier
    hub_id: Identifier


@message("microhub.fleet.vehicle_status_changed.v1", FLEET_TELEMETRY.name)
class VehicleStatusChanged(_Telemetry):
    status: VehicleStatus
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    location: GeoPoint | None = None


@message("microhub.fleet.stop_delivered.v1", FLEET_TELEMETRY.name)
class StopDelivered(_Telemetry):
    route_id: str = Field(min_length=1, max_length=100)
    booking_id: str = Field(min_length=1, max_length=100)
    stop_id: Identifier


@message("microhub.fleet.stop_failed.v1", FLEET_TELEMETRY.name)
class StopFailed(_Telemetry):
    route_id: str = Field(min_length=1, max_length=100)
    booking_id: str = Field(min_length=1, max_length=100)
    stop_id: Identifier
    reason: str = Field(
        min_length=1, max_length=200, description="e.g. recipient_absent, access_denied"
    )


@message("microhub.fleet.route_finished.v1", FLEET_TELEMETRY.name)
class RouteFinished(_Telemetry):
    route_id: str = Field(min_length=1, max_length=100)
    actual_km: float = Field(ge=0, le=2000, allow_inf_nan=False)
    energy_kwh: float | None = Field(
        default=None,
        ge=0,
        le=2000,
        allow_inf_nan=False,
        description="Measured energy drawn from the battery (electric vehicles).",
    )


# ----------------------------------------------------------------------------- v2 ---


class ProofOfDelivery(Payload):
    """What the driver's app records at the door."""

    at: AwareDatetime = Field(description="when the parcels were handed over (or collected)")
    location: GeoPoint
    recipient_name: str | None = Field(default=None, max_length=200)
    signature_ref: str | None = Field(
        default=None, max_length=500, description="a reference to the stored signature image"
    )
    photo_ref: str | None = Field(
        default=None, max_length=500, description="a reference to the stored photo"
    )


@message("microhub.fleet.stop_delivered.v2", FLEET_TELEMETRY.name)
class StopDeliveredV2(_Telemetry):
    """``stop_delivered.v1`` with the proof of delivery; at a pickup stop: collected."""

    route_id: str = Field(min_length=1, max_length=100)
    booking_id: str = Field(min_length=1, max_length=100)
    stop_id: Identifier
    proof: ProofOfDelivery


@message("microhub.fleet.stop_failed.v2", FLEET_TELEMETRY.name)
class StopFailedV2(_Telemetry):
    """``stop_failed.v1`` with where and when, and a photo of the door if there is one."""

    route_id: str = Field(min_length=1, max_length=100)
    booking_id: str = Field(min_length=1, max_length=100)
    stop_id: Identifier
    reason: str = Field(
        min_length=1, max_length=200, description="e.g. recipient_absent, access_denied"
    )
    at: AwareDatetime
    location: GeoPoint | None = None
    photo_ref: str | None = Field(default=None, max_length=500)
