"""The fleet of each hub: vehicles, their limits and shifts, and the city's circuity factor.

Loaded from YAML (``data/fleet.yaml`` is the sample for every sample hub;
``MICROHUB_FLEET_FILE`` overrides it) with errors that name the hub, the vehicle and the
field, and managed through the admin API afterwards.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.common import Identifier
from contracts.fleet import VehicleType
from contracts.vehicle_energy import battery_kwh_per_km
from services.dispatch.solver import DEFAULT_CIRCUITY
from services.dispatch.wave_policy import WavePolicy
from services.runtime.yamlfile import load_listing, validation_problems

SAMPLE_FLEET = Path(__file__).parent / "data" / "fleet.yaml"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class FleetError(ValueError):
    pass


class Capacity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    parcels: int = Field(ge=1, le=10_000)
    kg: float = Field(gt=0, le=10_000, allow_inf_nan=False)
    m3: float = Field(gt=0, le=100, allow_inf_nan=False)


class BreakRule(BaseModel):
    """The driver's break: ``minutes`` off once ``after_hours`` of work since the last
    break would be exceeded (loading, charging, driving, waiting and service all count)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_hours: float = Field(gt=0.5, le=12, allow_inf_nan=False)
    minutes: float = Field(ge=5, le=120, allow_inf_nan=False)


ShiftWindow = Annotated[str, Field(description="local time 'HH:MM-HH:MM', end after start")]


class VehicleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    type: VehicleType
    capacity: Capacity
    range_km: float = Field(gt=0, le=1000, allow_inf_nan=False, description="usable, full charge")
    speed_kmh: float = Field(gt=0, le=120, allow_inf_nan=False, description="average in town")
    energy_kwh_per_km: float = Field(
        ge=0,
        le=5,
        allow_inf_nan=False,
        description="From the battery; default: the shared reference value of the type "
        "(contracts/data/vehicle_energy.yaml), which reporting uses too",
    )
    shifts: dict[Weekday, list[ShiftWindow]] = Field(
        description="Local shift windows per weekday (the hub's time zone)."
    )
    max_trips: int = Field(
        default=1,
        ge=1,
        le=10,
        description="trips from the hub within one wave, reloading (and recharging) at "
        "the hub in between; the battery at departure must cover them all",
    )

    charge_at_shift_start_pct: float = Field(
        default=100,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="battery state when the shift starts, until telemetry reports one",
    )
    charge_kw: float | None = Field(
        default=None,
        gt=0,
        le=400,
        allow_inf_nan=False,
        description="charging power at the hub between trips; the range it recharges is "
        "charge_kw / energy_kwh_per_km per hour (unset: no recharge counted on, the "
        "battery at departure covers every trip)",
    )
    breaks: BreakRule | None = Field(default=None, description="the driver's break rule")

    @model_validator(mode="before")
    @classmethod
    def _reference_energy(cls, data: Any) -> Any:
        # one source of kWh/km for dispatch and reporting: a vehicle states its own only
        # when it knows better (measured)
        if isinstance(data, dict) and data.get("energy_kwh_per_km") is None:
            try:
                reference = battery_kwh_per_km(data.get("type", ""))
            except ValueError:
                return data  # an unknown type: the field validator names it
            if reference is not None:
                data = {**data, "energy_kwh_per_km": reference}
        return data

    @field_validator("shifts")
    @classmethod
    def _windows(cls, shifts: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, windows in shifts.items():
            for window in windows:
                match = _WINDOW.match(window)
                if not match:
                    raise ValueError(f"{day}: {window!r} is not 'HH:MM-HH:MM'")
                start = int(match[1]) * 60 + int(match[2])
                end = int(match[3]) * 60 + int(match[4])
                if end <= start or end > 24 * 60:
                    raise ValueError(f"{day}: {window!r} must end after it starts, by 24:00")
        return shifts


_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class WaveSettings(BaseModel):
    """When the hub's waves leave (docs/dispatch.md, "Waves that consolidate"); what is
    not set here comes from the settings (``MICROHUB_DISPATCH_WAVE_…``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    departures: list[str] = Field(
        default_factory=list, description="local departure times 'HH:MM', every day"
    )
    min_stops: int | None = Field(default=None, ge=1, description="leave when this many wait")
    max_wait_minutes: float | None = Field(
        default=None,
        gt=0,
        le=24 * 60,
        description="latest departure: how long the first new stop may wait; without "
        "departures the setting's default applies, with departures none (they are the "
        "latest departures) unless set here",
    )
    release: Literal["auto", "review"] = Field(
        default="auto",
        description="auto: a planned wave is released to the vehicles at once; review: "
        "the hub's dispatcher releases it",
    )

    @field_validator("departures")
    @classmethod
    def _clock_times(cls, value: list[str]) -> list[str]:
        for text in value:
            if not _CLOCK.match(text):
                raise ValueError(f"{text!r} is not a local time 'HH:MM'")
        if len(set(value)) != len(value):
            raise ValueError("departure times listed more than once")
        return sorted(value)


class HubFleet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hub_id: Identifier
    service_minutes_per_stop: float = Field(default=4.0, ge=0, le=120)
    load_minutes_per_trip: float = Field(
        default=0.0,
        ge=0,
        le=240,
        description="at the hub before every trip: loading, and between trips of a vehicle "
        "that reloads, reloading and recharging",
    )
    waves: WaveSettings = Field(default_factory=WaveSettings)
    vehicles: list[VehicleConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> HubFleet:
        ids = [v.id for v in self.vehicles]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"vehicle ids listed more than once: {dupes}")
        return self


class FleetFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    circuity: dict[Identifier, float] = Field(
        default_factory=dict, description="city id -> road km per great-circle km"
    )
    hubs: list[HubFleet]

    @field_validator("circuity")
    @classmethod
    def _plausible(cls, value: dict[str, float]) -> dict[str, float]:
        for city, factor in value.items():
            if not 1.0 <= factor <= 3.0:
                raise ValueError(f"circuity of {city} is {factor}; road km per straight km is 1-3")
        return value

    def circuity_of(self, city_id: str | None) -> float:
        return self.circuity.get(city_id or "", DEFAULT_CIRCUITY)

    def hub(self, hub_id: str) -> HubFleet:
        for hub in self.hubs:
            if hub.hub_id == hub_id:
                return hub
        return HubFleet(hub_id=hub_id)

    def service_minutes(self, hub_id: str) -> float:
        return self.hub(hub_id).service_minutes_per_stop

    def load_minutes(self, hub_id: str) -> float:
        return self.hub(hub_id).load_minutes_per_trip

    def wave_policy(self, hub_id: str, default: WavePolicy) -> WavePolicy:
        """The hub's wave policy: its ``waves`` settings over the service's defaults."""
        waves = self.hub(hub_id).waves
        departures = tuple(time(int(t[:2]), int(t[3:])) for t in waves.departures)
        if waves.max_wait_minutes is not None:
            max_wait: timedelta | None = timedelta(minutes=waves.max_wait_minutes)
        else:
            max_wait = None if departures else default.max_wait
        return WavePolicy(
            min_stops=waves.min_stops or default.min_stops,
            max_wait=max_wait,
            departures=departures or default.departures,
        )


def load_fleet(path: Path | None = None) -> FleetFile:
    path = path or SAMPLE_FLEET
    document = load_listing(path, what="fleet file", key="hubs", error=FleetError)
    # Top-level "x-..." keys only hold YAML anchors (as in compose files).
    document = {k: v for k, v in document.items() if not str(k).startswith("x-")}
    # Validate hub by hub and vehicle by vehicle so the error names where it is.
    for index, hub in enumerate(document["hubs"]):
        hub_name = hub.get("hub_id", f"#{index + 1}") if isinstance(hub, dict) else f"#{index + 1}"
        vehicles = hub.get("vehicles") if isinstance(hub, dict) else None
        for v_index, vehicle in enumerate(vehicles if isinstance(vehicles, list) else []):
            v_name = vehicle.get("id", f"#{v_index + 1}") if isinstance(vehicle, dict) else v_index
            try:
                VehicleConfig.model_validate(vehicle)
            except ValidationError as exc:
                raise FleetError(
                    f"fleet file {path}: hub {hub_name}, vehicle {v_name}: {validation_problems(exc)}"
                ) from exc
        try:
            HubFleet.model_validate(hub)
        except ValidationError as exc:
            raise FleetError(
                f"fleet file {path}: hub {hub_name}: {validation_problems(exc)}"
            ) from exc
    try:
        fleet = FleetFile.model_validate(document)
    except ValidationError as exc:
        raise FleetError(f"fleet file {path}: {validation_problems(exc)}") from exc
    hub_ids = [h.hub_id for h in fleet.hubs]
    dupes = sorted({h for h in hub_ids if hub_ids.count(h) > 1})
    if dupes:
        raise FleetError(f"fleet file {path} lists these hubs more than once: {dupes}")
    vehicle_hubs: dict[str, str] = {}
    for hub in fleet.hubs:
        for vehicle in hub.vehicles:
            if vehicle.id in vehicle_hubs:
                raise FleetError(
                    f"fleet file {path}: vehicle {vehicle.id} is in both "
                    f"{vehicle_hubs[vehicle.id]} and {hub.hub_id}"
                )
            vehicle_hubs[vehicle.id] = hub.hub_id
    return fleet


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def shift_minutes_left(vehicle: VehicleConfig, now: datetime, timezone: str) -> float:
    """Minutes from ``now`` to the end of the shift window ``now`` falls in (0 when the
    vehicle is off shift). Local time of the hub, so daylight saving is respected."""
    try:
        tz = ZoneInfo(timezone)
    except Exception:
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    day = WEEKDAYS[local.weekday()]
    minute_of_day = local.hour * 60 + local.minute + local.second / 60
    for window in vehicle.shifts.get(day, []):
        start, end = (_minutes(part) for part in window.split("-"))
        if start <= minute_of_day < end:
            midnight = datetime.combine(local.date(), time(0), tzinfo=tz)
            end_at = midnight + timedelta(minutes=end)
            # through UTC: on a daylight-saving day wall-clock differences are an hour off
            return max(0.0, (end_at.astimezone(UTC) - now.astimezone(UTC)).total_seconds() / 60)
    return 0.0


def minutes_into_shift(vehicle: VehicleConfig, now: datetime, timezone: str) -> float:
    """Minutes from the start of the shift window ``now`` falls in to ``now`` (0 when
    the vehicle is off shift)."""
    try:
        tz = ZoneInfo(timezone)
    except Exception:
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    minute_of_day = local.hour * 60 + local.minute + local.second / 60
    for window in vehicle.shifts.get(WEEKDAYS[local.weekday()], []):
        start, end = (_minutes(part) for part in window.split("-"))
        if start <= minute_of_day < end:
            midnight = datetime.combine(local.date(), time(0), tzinfo=tz)
            start_at = midnight + timedelta(minutes=start)
            return max(0.0, (now.astimezone(UTC) - start_at.astimezone(UTC)).total_seconds() / 60)
    return 0.0


def charge_km_per_min(vehicle: VehicleConfig) -> float:
    """Range recharged per minute at the hub (0 when it does not charge between trips)."""
    if vehicle.charge_kw is None or vehicle.energy_kwh_per_km <= 0:
        return 0.0
    return vehicle.charge_kw / vehicle.energy_kwh_per_km / 60


def as_document(vehicle: VehicleConfig) -> dict[str, Any]:
    return vehicle.model_dump(mode="json")
