"""The dispatch service's queries (its own database; nobody else reads it). The tables and
the row types are in tables.py; the names callers use as ``store.<table>`` are re-exported
here, so that ``store`` stays the one name a handler needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.fleet import VehicleStatus
from services.dispatch.domain import ACTIVE_ROUTE, RouteStatus, StopStatus, VehicleState
from services.dispatch.fleet import VehicleConfig
from services.dispatch.tables import HubRow, RouteRow, StopRow, hubs, routes, stops, vehicles
from services.dispatch.tables import hub_change_heads as hub_change_heads
from services.dispatch.tables import hub_changes as hub_changes
from services.dispatch.tables import inbox as inbox
from services.dispatch.tables import metadata as metadata
from services.dispatch.tables import outbox as outbox
from services.runtime.db import insert_ignoring, rowcount, upsert

# The statements of the consumers' hot paths are built once and take their values as bind
# parameters (``b_…``, apart from column names): building a statement costs more CPU than
# running it. The dialect-specific INSERTs are built once per dialect (db.insert_ignoring,
# db.upsert).


# ------------------------------------------------------------------------------ hubs ---


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
    await session.execute(
        upsert(session, hubs, "id", "name", "city_id", "timezone", "lat", "lon"),
        dict(
            id=hub_id, wave_seq=0, name=name, city_id=city_id, timezone=timezone, lat=lat, lon=lon
        ),
    )


_GET_HUB = select(hubs).where(hubs.c.id == bindparam("b_id"))


async def get_hub(session: AsyncSession, hub_id: str) -> HubRow | None:
    row = (await session.execute(_GET_HUB, {"b_id": hub_id})).mappings().first()
    return HubRow(**row) if row else None


async def hub_ids(session: AsyncSession) -> list[str]:
    return list((await session.execute(select(hubs.c.id).order_by(hubs.c.id))).scalars())


_ADVANCE_CLOCK = update(hubs).where(
    hubs.c.id == bindparam("b_id"), hubs.c.clock.is_(None) | (hubs.c.clock < bindparam("b_now"))
)


# built once: lock_hub runs for every event
_LOCK_HUB = update(hubs).where(hubs.c.id == bindparam("b_id")).values(wave_seq=hubs.c.wave_seq)


async def lock_hub(session: AsyncSession, hub_id: str) -> None:
    """Serialise everything about one hub: the bookings and the telemetry consumers (and
    the wave timer, the fleet admin) may touch the same hub at once. A no-op UPDATE takes
    the row lock on PostgreSQL and the write lock on SQLite, until commit."""
    await session.execute(_LOCK_HUB, {"b_id": hub_id})


async def advance_clock(session: AsyncSession, hub_id: str, now: datetime) -> None:
    """The hub's clock is the latest event time seen (events may arrive a little out of
    order across the two topics; the clock never goes back)."""
    await session.execute(_ADVANCE_CLOCK, {"b_id": hub_id, "b_now": now, "clock": now})


async def next_wave(session: AsyncSession, hub_id: str, now: datetime) -> int:
    await session.execute(
        update(hubs)
        .where(hubs.c.id == hub_id)
        .values(wave_seq=hubs.c.wave_seq + 1, last_wave_at=now)
    )
    return (await session.execute(select(hubs.c.wave_seq).where(hubs.c.id == hub_id))).scalar_one()


# ----------------------------------------------------------------------------- stops ---


def _stop(row: Any) -> StopRow:
    return StopRow(**{**row, "status": StopStatus(row["status"])})


async def add_stop(session: AsyncSession, **values: Any) -> bool:
    """Insert an expected stop; False when it is already known (a resent confirmation)."""
    result = await session.execute(
        insert_ignoring(session, stops, "booking_id", "stop_id"), {"attempts": 0, **values}
    )
    return rowcount(result) == 1


_STOPS_OF_BOOKING = select(stops).where(stops.c.booking_id == bindparam("b_booking_id"))


async def stops_of_booking(session: AsyncSession, booking_id: str) -> list[StopRow]:
    rows = await session.execute(_STOPS_OF_BOOKING, {"b_booking_id": booking_id})
    return [_stop(r) for r in rows.mappings()]


@cache
def _stops_of_hub(statuses: tuple[StopStatus, ...]) -> Any:
    return (
        select(stops)
        .where(
            stops.c.hub_id == bindparam("b_hub_id"), stops.c.status.in_([s.value for s in statuses])
        )
        .order_by(stops.c.queued_at, stops.c.booking_id, stops.c.stop_id)
    )


async def stops_of_hub(
    session: AsyncSession, hub_id: str, statuses: tuple[StopStatus, ...]
) -> list[StopRow]:
    rows = await session.execute(_stops_of_hub(statuses), {"b_hub_id": hub_id})
    return [_stop(r) for r in rows.mappings()]


async def stops_of_route(session: AsyncSession, route_id: str) -> list[StopRow]:
    rows = await session.execute(select(stops).where(stops.c.route_id == route_id))
    return [_stop(r) for r in rows.mappings()]


@dataclass(frozen=True)
class WaitingQueue:
    """A hub's waiting stops in numbers, what ``domain.wave_due`` decides on."""

    waiting: int
    fresh: int  # queued after the last wave (all queued ones when there was none)
    oldest_queued_at: datetime | None
    oldest_fresh_at: datetime | None = None  # the first of the fresh ones


_WAITING_OF_HUB = (
    stops.c.hub_id == bindparam("b_hub_id"),
    stops.c.status == StopStatus.WAITING.value,
)
# count(queued_at) counts the stops with a queue time, like the loop over the rows did
_QUEUE = select(func.count(), func.count(stops.c.queued_at), func.min(stops.c.queued_at)).where(
    *_WAITING_OF_HUB
)
_QUEUE_SINCE = select(
    func.count(),
    func.count(case((stops.c.queued_at > bindparam("b_since"), 1))),
    func.min(stops.c.queued_at),
    func.min(case((stops.c.queued_at > bindparam("b_since"), stops.c.queued_at))),
).where(*_WAITING_OF_HUB)


async def waiting_queue(
    session: AsyncSession, hub_id: str, last_wave_at: datetime | None
) -> WaitingQueue:
    """The numbers of stops_of_hub(WAITING) in one aggregate row: most events plan no wave,
    and deciding that needs no stop rows."""
    if last_wave_at is None:
        row = (await session.execute(_QUEUE, {"b_hub_id": hub_id})).one()
        return WaitingQueue(row[0], row[1], row[2], row[2])
    params = {"b_hub_id": hub_id, "b_since": last_wave_at}
    row = (await session.execute(_QUEUE_SINCE, params)).one()
    return WaitingQueue(row[0], row[1], row[2], row[3])


_STOP_KEY = (
    stops.c.booking_id == bindparam("b_booking_id"),
    stops.c.stop_id == bindparam("b_stop_id"),
)
_GET_STOP = select(stops).where(*_STOP_KEY)
_SET_STOP = update(stops).where(*_STOP_KEY)  # SET: the columns in the parameters


async def get_stop(session: AsyncSession, booking_id: str, stop_id: str) -> StopRow | None:
    params = {"b_booking_id": booking_id, "b_stop_id": stop_id}
    row = (await session.execute(_GET_STOP, params)).mappings().first()
    return _stop(row) if row else None


async def set_stop(
    session: AsyncSession, booking_id: str, stop_id: str, *, now: datetime, **values: Any
) -> None:
    if "status" in values:
        values["status"] = StopStatus(values["status"]).value
    await session.execute(
        _SET_STOP,
        {"b_booking_id": booking_id, "b_stop_id": stop_id, "updated_at": now, **values},
    )


async def reschedule_expected_stops(
    session: AsyncSession, booking_id: str, *, expected_at: datetime, moves: int, now: datetime
) -> int:
    """A booking moved to another slot: its stops not yet at the hub are expected then.
    Only a move newer than the last applied (``moves``): booking may publish an earlier
    move's answer again, and it must not move them back."""
    result = await session.execute(
        update(stops)
        .where(
            stops.c.booking_id == booking_id,
            stops.c.status == StopStatus.EXPECTED.value,
            stops.c.booking_moves < moves,
        )
        .values(
            expected_at=expected_at,
            booking_moves=moves,
            reason=f"expected with the slot at {expected_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
            updated_at=now,
        )
    )
    return rowcount(result)


async def remove_open_stops(session: AsyncSession, booking_id: str) -> int:
    """Forget a cancelled or no-show booking's stops that no vehicle has yet."""
    result = await session.execute(
        delete(stops).where(
            stops.c.booking_id == booking_id,
            stops.c.status.in_([StopStatus.EXPECTED.value, StopStatus.WAITING.value]),
        )
    )
    return rowcount(result)


# -------------------------------------------------------------------------- vehicles ---


async def upsert_vehicle(session: AsyncSession, hub_id: str, config: VehicleConfig) -> None:
    # a vehicle put again keeps its status (it may be on a route)
    await session.execute(
        upsert(session, vehicles, "id", "hub_id", "config", "active"),
        {
            "id": config.id,
            "hub_id": hub_id,
            "config": config.model_dump(mode="json"),
            "status": VehicleStatus.AVAILABLE.value,
            "active": 1,
        },
    )


async def deactivate_vehicle(session: AsyncSession, vehicle_id: str) -> bool:
    result = await session.execute(
        update(vehicles).where(vehicles.c.id == vehicle_id, vehicles.c.active == 1).values(active=0)
    )
    return rowcount(result) == 1


_VEHICLE_HUB = select(vehicles.c.hub_id).where(
    vehicles.c.id == bindparam("b_id"), vehicles.c.active == 1
)


async def vehicle_hub(session: AsyncSession, vehicle_id: str) -> str | None:
    return (await session.execute(_VEHICLE_HUB, {"b_id": vehicle_id})).scalar_one_or_none()


_SET_VEHICLE = update(vehicles).where(vehicles.c.id == bindparam("b_id"))  # SET: parameters


async def set_vehicle_status(
    session: AsyncSession,
    vehicle_id: str,
    *,
    status: VehicleStatus,
    now: datetime,
    battery_pct: float | None = None,
) -> None:
    values: dict[str, Any] = dict(b_id=vehicle_id, status=status.value, status_at=now)
    if battery_pct is not None:
        values["battery_pct"] = battery_pct
    await session.execute(_SET_VEHICLE, values)


_BUSY_VEHICLES = select(routes.c.vehicle_id, routes.c.id).where(
    routes.c.hub_id == bindparam("b_hub_id"),
    routes.c.status.in_([s.value for s in ACTIVE_ROUTE]),
)
_VEHICLES_OF_HUB = (
    select(vehicles)
    .where(vehicles.c.hub_id == bindparam("b_hub_id"), vehicles.c.active == 1)
    .order_by(vehicles.c.id)
)


async def fleet_of(session: AsyncSession, hub_id: str) -> list[VehicleState]:
    params = {"b_hub_id": hub_id}
    busy = dict((await session.execute(_BUSY_VEHICLES, params)).all())
    rows = await session.execute(_VEHICLES_OF_HUB, params)
    return [
        VehicleState(
            config=VehicleConfig.model_validate(r["config"]),
            status=VehicleStatus(r["status"]),
            battery_pct=r["battery_pct"],
            busy_route=busy.get(r["id"]),
            since=r["status_at"],
        )
        for r in rows.mappings()
    ]


# ---------------------------------------------------------------------------- routes ---


def _route(row: Any) -> RouteRow:
    return RouteRow(**{**row, "status": RouteStatus(row["status"])})


async def add_route(session: AsyncSession, **values: Any) -> bool:
    result = await session.execute(
        insert_ignoring(session, routes, "id"), {"status": RouteStatus.PLANNED.value, **values}
    )
    return rowcount(result) == 1


_GET_ROUTE = select(routes).where(routes.c.id == bindparam("b_id"))
_ACTIVE_ROUTE_OF = (
    select(routes)
    .where(
        routes.c.vehicle_id == bindparam("b_vehicle_id"),
        routes.c.status.in_([s.value for s in ACTIVE_ROUTE]),
    )
    .order_by(routes.c.planned_at, routes.c.id)  # a vehicle's trips in order
)
_SET_ROUTE = update(routes).where(routes.c.id == bindparam("b_id"))  # SET: parameters


async def get_route(session: AsyncSession, route_id: str) -> RouteRow | None:
    row = (await session.execute(_GET_ROUTE, {"b_id": route_id})).mappings().first()
    return _route(row) if row else None


async def active_route_of(session: AsyncSession, vehicle_id: str) -> RouteRow | None:
    rows = await session.execute(_ACTIVE_ROUTE_OF, {"b_vehicle_id": vehicle_id})
    row = rows.mappings().first()
    return _route(row) if row else None


async def set_route(session: AsyncSession, route_id: str, **values: Any) -> None:
    if "status" in values:
        values["status"] = RouteStatus(values["status"]).value
    await session.execute(_SET_ROUTE, {"b_id": route_id, **values})


async def delete_route(session: AsyncSession, route_id: str) -> None:
    """A proposed route the dispatcher re-planned or emptied (it was never published)."""
    await session.execute(
        delete(routes).where(routes.c.id == route_id, routes.c.status == RouteStatus.PROPOSED.value)
    )


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
