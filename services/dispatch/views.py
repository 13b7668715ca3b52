"""The dispatch queue of one hub as JSON: what the HTTP snapshot, the SSE stream and the
terminal view show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import domain, store
from services.dispatch.domain import RouteStatus, StopStatus, VehicleState

QUEUED = (StopStatus.EXPECTED, StopStatus.WAITING, StopStatus.FAILED, StopStatus.HELD)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


async def snapshot(
    session: AsyncSession, hub_id: str, *, now: datetime | None = None
) -> dict[str, Any] | None:
    hub = await store.get_hub(session, hub_id)
    fleet = await store.fleet_of(session, hub_id)
    if hub is None and not fleet:
        return None
    clock = (hub.clock if hub else None) or now or datetime.now(UTC)
    timezone = hub.timezone if hub else "UTC"
    stops = await store.stops_of_hub(session, hub_id, QUEUED)
    routes = await store.routes_of_hub(
        session, hub_id, (RouteStatus.PROPOSED, RouteStatus.PLANNED, RouteStatus.RUNNING)
    )
    done = await store.routes_of_hub(session, hub_id, (RouteStatus.COMPLETED,), limit=10)
    route_status = {r.id: r.status for r in routes}
    return {
        "hub_id": hub_id,
        "hub": None
        if hub is None
        else {
            "name": hub.name,
            "city_id": hub.city_id,
            "timezone": hub.timezone,
            "location": {"lat": hub.lat, "lon": hub.lon},
        },
        "clock": _iso(clock),
        "last_wave_at": _iso(hub.last_wave_at) if hub else None,
        "waves": hub.wave_seq if hub else 0,
        "stops": [
            {
                "booking_id": s.booking_id,
                "stop_id": s.stop_id,
                "carrier_id": s.carrier_id,
                "status": s.status.value,
                "parcels": s.parcels,
                "weight_kg": s.weight_kg,
                "volume_m3": s.volume_m3,
                "location": {"lat": s.lat, "lon": s.lon},
                "attempts": s.attempts,
                "reason": s.reason,
                "expected_at": _iso(s.expected_at),
                "queued_at": _iso(s.queued_at),
                "kind": s.kind,
                "window": None
                if s.window_start is None
                else {"start": _iso(s.window_start), "end": _iso(s.window_end)},
                "pinned_vehicle": s.pinned_vehicle,
            }
            for s in stops
        ],
        "vehicles": [
            {
                "vehicle_id": v.config.id,
                "type": v.config.type.value,
                "status": v.status.value,
                "state": _state(v, route_status, now=clock, timezone=timezone),
                "battery_pct": v.battery_pct,
                "route_id": v.busy_route,
                "free": domain.why_not_free(v, now=clock, timezone=timezone) is None,
                "why_not_free": domain.why_not_free(v, now=clock, timezone=timezone),
                "capacity": v.config.capacity.model_dump(),
                "range_km": v.config.range_km,
            }
            for v in fleet
        ],
        "routes": [_route(r) for r in routes],
        "completed": [_route(r) for r in done],
    }


def _route(route: store.RouteRow) -> dict[str, Any]:
    p = route.planned
    return {
        "route_id": route.id,
        "wave_id": route.wave_id,
        "vehicle_id": route.vehicle_id,
        "status": route.status.value,
        "planned_at": _iso(route.planned_at),
        "started_at": _iso(route.started_at),
        "completed_at": _iso(route.completed_at),
        "stops": [
            {
                "sequence": s["sequence"],
                "booking_id": s["booking_id"],
                "stop_id": s["stop_id"],
                "parcels": s["parcels"],
                "carrier_id": s.get("carrier_id"),
                "location": s.get("location"),  # the dashboard draws the route through it
            }
            for s in p["stops"]
        ],
        "load_parcels": p["load_parcels"],
        "load_kg": p["load_kg"],
        "load_m3": p["load_m3"],
        "planned_km": p["planned_km"],
        "planned_duration_min": p["planned_duration_min"],
        "solver": p["solver"],
        "actual_km": route.actual_km,
        "energy_kwh": route.energy_kwh,
    }


def _state(
    vehicle: VehicleState, route_status: dict[str, RouteStatus], *, now: datetime, timezone: str
) -> str:
    """What an operator calls it: free, loading (its route is planned, not started), on
    route, charging, off shift..."""
    if vehicle.busy_route is not None:
        running = route_status.get(vehicle.busy_route) is RouteStatus.RUNNING
        return "on_route" if running else "loading"
    reason = domain.why_not_free(vehicle, now=now, timezone=timezone)
    if reason is None:
        return "free"
    return "off_shift" if reason == "off shift" else vehicle.status.value
