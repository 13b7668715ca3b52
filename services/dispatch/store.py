"""The dispatch service's tables and queries (its own database; nobody else reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.fleet import VehicleStatus
from services.dispatch.domain import ACTIVE_ROUTE, RouteStatus, StopStatus, VehicleState
from services.dispatch.fleet import VehicleConfig
from services.runtime.db import UTCDateTime, dialect_insert, new_metadata
from services.runtime.messaging_tables import add_inbox, add_outbox

metadata = new_metadata()

# What dispatch knows of a hub: from the hub summary in BookingConfirmed, plus its own
# event-time clock and wave counter.
hubs = Table(
    "hubs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("city_id", String(64), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("clock", UTCDateTime(), nullable=True, comment="latest event time seen"),
    Column("last_wave_at", UTCDateTime(), nullable=True),
    Column("wave_seq", Integer, nullable=False, default=0),
)

stops = Table(
    "stops",
    metadata,
    Column("booking_id", String(100), nullable=False),
    Column("stop_id", String(64), nullable=False),
    Column("hub_id", String(64), nullable=False, index=True),
    Column("carrier_id", String(64), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("parcels", Integer, nullable=False),
    Column("weight_kg", Float, nullable=False),
    Column("volume_m3", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("reason", Text, nullable=True, comment="why it waits (or was returned)"),
    Column("route_id", String(100), nullable=True),
    Column("expected_at", UTCDateTime(), nullable=True, comment="slot start"),
    Column("queued_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("booking_id", "stop_id"),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("hub_id", String(64), nullable=False, index=True),
    Column("config", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("battery_pct", Float, nullable=True),
    Column("status_at", UTCDateTime(), nullable=True),
    Column("active", Integer, nullable=False, default=1, comment="0 once removed by an admin"),
)

routes = Table(
    "routes",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("hub_id", String(64), nullable=False, index=True),
    Column("wave_id", String(100), nullable=False),
    Column("vehicle_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("planned", JSON, nullable=False, comment="the RoutePlanned payload"),
    Column("planned_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("actual_km", Float, nullable=True),
    Column("energy_kwh", Float, nullable=True),
)

outbox = add_outbox(metadata)
inbox = add_inbox(metadata)


# ------------------------------------------------------------------------------ hubs ---


@dataclass(frozen=True)
class HubRow:
    id: str
    name: str
    city_id: str
    timezone: str
    lat: float
    lon: float
    clock: datetime | None
    last_wave_at: datetime | None
    wave_seq: int


async def upsert_hub(
    session: AsyncSession,
    *,
    hub_id: str,
    name: str,
    city_id: str,
    timezone: str,
    lat: float,
    lon: float,
) -> None:
    values = dict(name=name, city_id=city_id, timezone=timezone, lat=lat, lon=lon)
    await session.execute(
        dialect_insert(session)(hubs)
        .values(id=hub_id, wave_seq=0, **values)
        .on_conflict_do_update(index_elements=["id"], set_=values)
    )


async def get_hub(session: AsyncSession, hub_id: str) -> HubRow | None:
    row = (await session.execute(select(hubs).where(hubs.c.id == hub_id))).mappings().first()
    return HubRow(**row) if row else None


async def hub_ids(session: AsyncSession) -> list[str]:
    return list((await session.execute(select(hubs.c.id).order_by(hubs.c.id))).scalars())


async def advance_clock(session: AsyncSession, hub_id: str, now: datetime) -> None:
    """The hub's clock is the latest event time seen (events may arrive a little out of
    order across the two topics; the clock never goes back)."""
    await session.execute(
        update(hubs)
        .where(hubs.c.id == hub_id, (hubs.c.clock.is_(None)) | (hubs.c.clock < now))
        .values(clock=now)
    )


async def next_wave(session: AsyncSession, hub_id: str, now: datetime) -> int:
    await session.execute(
        update(hubs)
        .where(hubs.c.id == hub_id)
        .values(wave_seq=hubs.c.wave_seq + 1, last_wave_at=now)
    )
    return (await session.execute(select(hubs.c.wave_seq).where(hubs.c.id == hub_id))).scalar_one()


# ----------------------------------------------------------------------------- stops ---


@dataclass(frozen=True)
class StopRow:
    booking_id: str
    stop_id: str
    hub_id: str
    carrier_id: str
    lat: float
    lon: float
    parcels: int
    weight_kg: float
    volume_m3: float
    status: StopStatus
    attempts: int
    reason: str | None
    route_id: str | None
    expected_at: datetime | None
    queued_at: datetime | None
    updated_at: datetime


def _stop(row: Any) -> StopRow:
    return StopRow(**{**row, "status": StopStatus(row["status"])})


async def add_stop(session: AsyncSession, **values: Any) -> bool:
    """Insert an expected stop; False when it is already known (a resent confirmation)."""
    result = await session.execute(
        dialect_insert(session)(stops)
        .values(attempts=0, **values)
        .on_conflict_do_nothing(index_elements=["booking_id", "stop_id"])
    )
    return result.rowcount == 1


async def stops_of_booking(session: AsyncSession, booking_id: str) -> list[StopRow]:
    rows = await session.execute(select(stops).where(stops.c.booking_id == booking_id))
    return [_stop(r) for r in rows.mappings()]


async def stops_of_hub(
    session: AsyncSession, hub_id: str, statuses: tuple[StopStatus, ...]
) -> list[StopRow]:
    rows = await session.execute(
        select(stops)
        .where(stops.c.hub_id == hub_id, stops.c.status.in_([s.value for s in statuses]))
        .order_by(stops.c.queued_at, stops.c.booking_id, stops.c.stop_id)
    )
    return [_stop(r) for r in rows.mappings()]


async def stops_of_route(session: AsyncSession, route_id: str) -> list[StopRow]:
    rows = await session.execute(select(stops).where(stops.c.route_id == route_id))
    return [_stop(r) for r in rows.mappings()]


async def get_stop(session: AsyncSession, booking_id: str, stop_id: str) -> StopRow | None:
    row = (
        (
            await session.execute(
                select(stops).where(stops.c.booking_id == booking_id, stops.c.stop_id == stop_id)
            )
        )
        .mappings()
        .first()
    )
    return _stop(row) if row else None


async def set_stop(
    session: AsyncSession, booking_id: str, stop_id: str, *, now: datetime, **values: Any
) -> None:
    if "status" in values:
        values["status"] = StopStatus(values["status"]).value
    await session.execute(
        update(stops)
        .where(stops.c.booking_id == booking_id, stops.c.stop_id == stop_id)
        .values(updated_at=now, **values)
    )


async def remove_open_stops(session: AsyncSession, booking_id: str) -> int:
    """Forget a cancelled or no-show booking's stops that no vehicle has yet."""
    result = await session.execute(
        delete(stops).where(
            stops.c.booking_id == booking_id,
            stops.c.status.in_([StopStatus.EXPECTED.value, StopStatus.WAITING.value]),
        )
    )
    return result.rowcount


# -------------------------------------------------------------------------- vehicles ---


async def upsert_vehicle(session: AsyncSession, hub_id: str, config: VehicleConfig) -> None:
    doc = config.model_dump(mode="json")
    await session.execute(
        dialect_insert(session)(vehicles)
        .values(
            id=config.id, hub_id=hub_id, config=doc, status=VehicleStatus.AVAILABLE.value, active=1
        )
        .on_conflict_do_update(
            index_elements=["id"], set_=dict(hub_id=hub_id, config=doc, active=1)
        )
    )


async def deactivate_vehicle(session: AsyncSession, vehicle_id: str) -> bool:
    result = await session.execute(
        update(vehicles).where(vehicles.c.id == vehicle_id, vehicles.c.active == 1).values(active=0)
    )
    return result.rowcount == 1


async def vehicle_hub(session: AsyncSession, vehicle_id: str) -> str | None:
    return (
        await session.execute(
            select(vehicles.c.hub_id).where(vehicles.c.id == vehicle_id, vehicles.c.active == 1)
        )
    ).scalar_one_or_none()


async def set_vehicle_status(
    session: AsyncSession,
    vehicle_id: str,
    *,
    status: VehicleStatus,
    now: datetime,
    battery_pct: float | None = None,
) -> None:
    values: dict[str, Any] = dict(status=status.value, status_at=now)
    if battery_pct is not None:
        values["battery_pct"] = battery_pct
    await session.execute(update(vehicles).where(vehicles.c.id == vehicle_id).values(**values))


async def fleet_of(session: AsyncSession, hub_id: str) -> list[VehicleState]:
    busy = dict(
        (
            await session.execute(
                select(routes.c.vehicle_id, routes.c.id).where(
                    routes.c.hub_id == hub_id, routes.c.status.in_([s.value for s in ACTIVE_ROUTE])
                )
            )
        ).all()
    )
    rows = await session.execute(
        select(vehicles)
        .where(vehicles.c.hub_id == hub_id, vehicles.c.active == 1)
        .order_by(vehicles.c.id)
    )
    return [
        VehicleState(
            config=VehicleConfig.model_validate(r["config"]),
            status=VehicleStatus(r["status"]),
            battery_pct=r["battery_pct"],
            busy_route=busy.get(r["id"]),
        )
        for r in rows.mappings()
    ]


# ---------------------------------------------------------------------------- routes ---


@dataclass(frozen=True)
class RouteRow:
    id: str
    hub_id: str
    wave_id: str
    vehicle_id: str
    status: RouteStatus
    planned: dict[str, Any]
    planned_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    actual_km: float | None
    energy_kwh: float | None


def _route(row: Any) -> RouteRow:
    return RouteRow(**{**row, "status": RouteStatus(row["status"])})


async def add_route(session: AsyncSession, **values: Any) -> bool:
    result = await session.execute(
        dialect_insert(session)(routes)
        .values(status=RouteStatus.PLANNED.value, **values)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return result.rowcount == 1


async def get_route(session: AsyncSession, route_id: str) -> RouteRow | None:
    row = (await session.execute(select(routes).where(routes.c.id == route_id))).mappings().first()
    return _route(row) if row else None


async def active_route_of(session: AsyncSession, vehicle_id: str) -> RouteRow | None:
    row = (
        (
            await session.execute(
                select(routes)
                .where(
                    routes.c.vehicle_id == vehicle_id,
                    routes.c.status.in_([s.value for s in ACTIVE_ROUTE]),
                )
                .order_by(routes.c.planned_at)
            )
        )
        .mappings()
        .first()
    )
    return _route(row) if row else None


async def set_route(session: AsyncSession, route_id: str, **values: Any) -> None:
    if "status" in values:
        values["status"] = RouteStatus(values["status"]).value
    await session.execute(update(routes).where(routes.c.id == route_id).values(**values))


async def routes_of_hub(
    session: AsyncSession, hub_id: str, statuses: tuple[RouteStatus, ...], *, limit: int = 200
) -> list[RouteRow]:
    rows = await session.execute(
        select(routes)
        .where(routes.c.hub_id == hub_id, routes.c.status.in_([s.value for s in statuses]))
        .order_by(routes.c.planned_at.desc(), routes.c.id)
        .limit(limit)
    )
    return [_route(r) for r in rows.mappings()]


async def count_routes(session: AsyncSession, hub_id: str | None = None) -> int:
    query = select(func.count()).select_from(routes)
    if hub_id is not None:
        query = query.where(routes.c.hub_id == hub_id)
    return (await session.execute(query)).scalar_one()
