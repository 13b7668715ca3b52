"""Reporting's projection tables and the SQL that aggregates them.

Rows hold physical quantities in whole metres and watt-hours (exact, order-independent
sums); factors are applied to the aggregated sums afterwards, so a per-city override of a
factor changes the report without rewriting the projection.

- ``consignments``: one row per confirmed booking, with its diesel-van baseline and the
  carrier's depot -> hub trips, computed once on ``BookingConfirmed``.
- ``routes``: one row per planned route (planned km, then actual km/kWh on completion).
- ``route_consignments``: one row per (route, consignment) with the consignment's
  allocation share of the route and the route's metres/Wh apportioned to it. The monthly
  report is a GROUP BY over these rows (joined to ``consignments`` for the baseline).
- ``input_events``: every event the projection used, with a hash of its content, for the
  report's digest of inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    and_,
    case,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import new_metadata
from services.runtime.messaging_tables import add_inbox

metadata = new_metadata()
inbox = add_inbox(metadata)

Big = BigInteger

cities = Table(
    "cities",
    metadata,
    Column("city_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("country", String(2), nullable=False),
    Column("timezone", String(64), nullable=False),
)

hubs = Table(
    "hubs",
    metadata,
    Column("hub_id", String(64), primary_key=True),
    Column("city_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
)

consignments = Table(
    "consignments",
    metadata,
    Column("booking_id", String(100), primary_key=True),
    Column("carrier_id", String(64), nullable=False),
    Column("hub_id", String(64), nullable=False),
    Column("city_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),  # confirmed | cancelled | no_show
    Column("parcel_count", Integer, nullable=False),
    Column("stop_count", Integer, nullable=False),
    Column("weight_kg", Float, nullable=False),
    Column("volume_m3", Float, nullable=False),
    Column("baseline_trips", Integer, nullable=False),
    Column("baseline_m", Big, nullable=False),
    Column("trunk_trips", Integer, nullable=False),
    Column("trunk_m", Big, nullable=False),
    Column("slot_start_ms", Big, nullable=False),
)

routes = Table(
    "routes",
    metadata,
    Column("route_id", String(100), primary_key=True),
    Column("hub_id", String(64), nullable=False),
    Column("city_id", String(64), nullable=False),
    Column("vehicle_type", String(20), nullable=False),
    Column("planned_m", Big, nullable=False),
    Column("actual_m", Big, nullable=True),
    Column("energy_wh", Big, nullable=True),
    Column("planned_at_ms", Big, nullable=False),
    Column("completed_at_ms", Big, nullable=True),
    Column("stop_count", Integer, nullable=False),
)

route_consignments = Table(
    "route_consignments",
    metadata,
    Column("route_id", String(100), primary_key=True),
    Column("booking_id", String(100), primary_key=True),
    Column("city_id", String(64), nullable=False),
    Column("hub_id", String(64), nullable=False),
    Column("carrier_id", String(64), nullable=False),
    Column("vehicle_type", String(20), nullable=False),
    Column("at_ms", Big, nullable=False),  # completion time, planning time until then
    Column("share", Float, nullable=False),  # allocation share of the route (sums to 1)
    Column("activity_tkm", Float, nullable=False),  # sum of weight x distance (t.km)
    Column("stops", Integer, nullable=False),
    Column("parcels", Integer, nullable=False),
    Column("baseline_parcels", Integer, nullable=False),  # parcels first routed here
    Column("weight_kg", Float, nullable=False),
    Column("alloc_m", Big, nullable=False),  # the route's metres apportioned to it
    Column("alloc_wh", Big, nullable=True),  # measured battery Wh apportioned, if any
    Column("km_actual", Boolean, nullable=False),
    Column("delivered_stops", Integer, nullable=False),
    Column("failed_stops", Integer, nullable=False),
)
Index("ix_route_consignments_city_at", route_consignments.c.city_id, route_consignments.c.at_ms)
Index("ix_route_consignments_booking", route_consignments.c.booking_id)

stop_claims = Table(
    "stop_claims",
    metadata,
    Column("booking_id", String(100), primary_key=True),
    Column("stop_id", String(64), primary_key=True),
    Column("route_id", String(100), nullable=False),
)

input_events = Table(
    "input_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("booking_id", String(100), nullable=True),
    Column("route_id", String(100), nullable=True),
    Column("content_sha256", String(64), nullable=False),
    # json.dumps([event id, content sha256]): one line with no raw newline, whatever the id
    Column("digest_line", String(320), nullable=False),
)
Index("ix_input_events_booking", input_events.c.booking_id)
Index("ix_input_events_route", input_events.c.route_id)


def _insert(session: AsyncSession):
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return pg_insert if dialect == "postgresql" else sqlite_insert


def content_sha256(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def digest_line(event_id: str, sha: str) -> str:
    return json.dumps([event_id, sha], separators=(",", ":"), ensure_ascii=True)


async def record_input(
    session: AsyncSession,
    *,
    event_id: str,
    event_type: str,
    data: dict[str, Any],
    booking_id: str | None = None,
    route_id: str | None = None,
) -> None:
    insert = _insert(session)
    sha = content_sha256(data)
    await session.execute(
        insert(input_events)
        .values(
            event_id=event_id,
            event_type=event_type,
            booking_id=booking_id,
            route_id=route_id,
            content_sha256=sha,
            digest_line=digest_line(event_id, sha),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )


async def upsert_city(session: AsyncSession, **row: Any) -> None:
    insert = _insert(session)
    stmt = insert(cities).values(**row)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["city_id"],
            set_={k: stmt.excluded[k] for k in ("name", "country", "timezone")},
        )
    )


async def upsert_hub(session: AsyncSession, **row: Any) -> None:
    insert = _insert(session)
    stmt = insert(hubs).values(**row)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["hub_id"],
            set_={k: stmt.excluded[k] for k in ("city_id", "name", "lat", "lon")},
        )
    )


async def add_consignment(session: AsyncSession, **row: Any) -> bool:
    """First confirmation wins: a re-sent confirmation of the same booking changes nothing."""
    insert = _insert(session)
    result = await session.execute(
        insert(consignments).values(**row).on_conflict_do_nothing(index_elements=["booking_id"])
    )
    return result.rowcount == 1


async def set_consignment_status(session: AsyncSession, booking_id: str, status: str) -> bool:
    result = await session.execute(
        update(consignments).where(consignments.c.booking_id == booking_id).values(status=status)
    )
    return result.rowcount == 1


async def add_route(session: AsyncSession, **row: Any) -> bool:
    insert = _insert(session)
    result = await session.execute(
        insert(routes).values(**row).on_conflict_do_nothing(index_elements=["route_id"])
    )
    return result.rowcount == 1


async def claim_stop(
    session: AsyncSession, *, booking_id: str, stop_id: str, route_id: str
) -> bool:
    """A stop's baseline is counted on the first route that carries it, not again when a
    failed stop is planned on a later route."""
    insert = _insert(session)
    result = await session.execute(
        insert(stop_claims)
        .values(booking_id=booking_id, stop_id=stop_id, route_id=route_id)
        .on_conflict_do_nothing(index_elements=["booking_id", "stop_id"])
    )
    return result.rowcount == 1


async def add_route_consignments(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(route_consignments.insert(), list(rows))


async def find_route(session: AsyncSession, route_id: str) -> Any | None:
    return (await session.execute(select(routes).where(routes.c.route_id == route_id))).first()


async def route_allocations(session: AsyncSession, route_id: str) -> list[Any]:
    return list(
        (
            await session.execute(
                select(route_consignments)
                .where(route_consignments.c.route_id == route_id)
                .order_by(route_consignments.c.booking_id)
            )
        ).all()
    )


async def complete_route(
    session: AsyncSession,
    route_id: str,
    *,
    actual_m: int,
    energy_wh: int | None,
    completed_at_ms: int,
) -> None:
    await session.execute(
        update(routes)
        .where(routes.c.route_id == route_id)
        .values(actual_m=actual_m, energy_wh=energy_wh, completed_at_ms=completed_at_ms)
    )


async def update_allocation(
    session: AsyncSession, route_id: str, booking_id: str, **values: Any
) -> None:
    await session.execute(
        update(route_consignments)
        .where(
            and_(
                route_consignments.c.route_id == route_id,
                route_consignments.c.booking_id == booking_id,
            )
        )
        .values(**values)
    )


async def find_city(session: AsyncSession, city_id: str) -> Any | None:
    return (await session.execute(select(cities).where(cities.c.city_id == city_id))).first()


async def city_hubs(session: AsyncSession, city_id: str) -> dict[str, str]:
    rows = await session.execute(
        select(hubs.c.hub_id, hubs.c.name).where(hubs.c.city_id == city_id)
    )
    return {r.hub_id: r.name for r in rows}


# --- the monthly aggregation ---------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One cell of the month: a local day x hub x carrier x vehicle type, with exact sums."""

    day: str
    hub_id: str
    carrier_id: str
    vehicle_type: str
    allocations: int
    stops: int
    delivered_stops: int
    parcels: int
    last_mile_m: int
    actual_km_m: int
    modelled_energy_m: int
    measured_wh: int
    baseline_m: int
    trunk_m: int
    baseline_trips_x1000: int


def _fraction(total: Any) -> Any:
    """total x baseline_parcels / parcel_count, rounded to a whole number in integer
    arithmetic (identical on PostgreSQL and SQLite, whatever the row order)."""
    c = consignments.c
    rc = route_consignments.c
    return (total * rc.baseline_parcels * 2 + c.parcel_count) // (c.parcel_count * 2)


def monthly_groups_query(city_id: str, days: Sequence[tuple[str, int, int]]):
    """One GROUP BY over the month's (route, consignment) rows. The local day is a CASE over
    the day boundaries in UTC (computed from the city's time zone), so the same query runs
    on PostgreSQL and SQLite and handles DST days."""
    rc = route_consignments.c
    c = consignments.c
    live = c.status == "confirmed"
    zero = literal(0)
    day = case(
        *[(rc.at_ms < hi, literal(i)) for i, (_d, _lo, hi) in enumerate(days)],
        else_=literal(len(days) - 1),
    )
    per_row = (
        select(
            day.label("day"),
            rc.hub_id,
            rc.carrier_id,
            rc.vehicle_type,
            rc.stops,
            rc.delivered_stops,
            rc.parcels,
            rc.alloc_m,
            case((rc.km_actual, rc.alloc_m), else_=zero).label("actual_km_m"),
            case((rc.alloc_wh.is_(None), rc.alloc_m), else_=zero).label("modelled_energy_m"),
            func.coalesce(rc.alloc_wh, zero).label("measured_wh"),
            case((live, _fraction(c.baseline_m)), else_=zero).label("baseline_m"),
            case((live, _fraction(c.trunk_m)), else_=zero).label("trunk_m"),
            case((live, _fraction(c.baseline_trips * 1000)), else_=zero).label("trips_x1000"),
        )
        .select_from(route_consignments.outerjoin(consignments, c.booking_id == rc.booking_id))
        .where(rc.city_id == city_id, rc.at_ms >= days[0][1], rc.at_ms < days[-1][2])
        .subquery("per_row")
    )
    r = per_row.c
    keys = (r.day, r.hub_id, r.carrier_id, r.vehicle_type)
    return select(
        *keys,
        func.count(),
        func.sum(r.stops),
        func.sum(r.delivered_stops),
        func.sum(r.parcels),
        func.sum(r.alloc_m),
        func.sum(r.actual_km_m),
        func.sum(r.modelled_energy_m),
        func.sum(r.measured_wh),
        func.sum(r.baseline_m),
        func.sum(r.trunk_m),
        func.sum(r.trips_x1000),
    ).group_by(*keys)


async def monthly_groups(
    session: AsyncSession, city_id: str, days: Sequence[tuple[str, int, int]]
) -> list[Group]:
    rows = (await session.execute(monthly_groups_query(city_id, days))).all()
    groups = [
        Group(days[int(r[0])][0], r[1], r[2], r[3], *(int(v or 0) for v in r[4:])) for r in rows
    ]
    # sorted here (not ORDER BY) so that the order never depends on a database collation
    return sorted(groups, key=lambda g: (g.day, g.hub_id, g.carrier_id, g.vehicle_type))


async def monthly_counts(session: AsyncSession, city_id: str, lo: int, hi: int) -> dict[str, int]:
    rc = route_consignments
    in_month = and_(rc.c.city_id == city_id, rc.c.at_ms >= lo, rc.c.at_ms < hi)
    row = (
        await session.execute(
            select(
                func.count(func.distinct(rc.c.route_id)),
                func.count(func.distinct(rc.c.booking_id)),
            ).where(in_month)
        )
    ).one()
    return {"routes": int(row[0]), "consignments": int(row[1])}


async def input_digest(session: AsyncSession, city_id: str, lo: int, hi: int) -> tuple[int, str]:
    """sha256 over the sorted lines ``["<event id>","<sha256 of its payload>"]`` (one per
    event behind the month's rows: the bookings and routes that appear in it), each line
    ending in a newline.

    The database concatenates the lines (one value to transfer instead of one row per
    event: at a million stops that is the difference between 0.3 s and 2 s); the sort is
    done here so that no database collation can change the order."""
    rc = route_consignments
    ie = input_events
    in_month = and_(rc.c.city_id == city_id, rc.c.at_ms >= lo, rc.c.at_ms < hi)
    # an input event names a booking or a route, never both: UNION ALL needs no dedupe
    lines = union_all(
        select(ie.c.digest_line.label("line")).where(
            ie.c.booking_id.in_(select(rc.c.booking_id).where(in_month))
        ),
        select(ie.c.digest_line.label("line")).where(
            ie.c.route_id.in_(select(rc.c.route_id).where(in_month))
        ),
    ).subquery("inputs")
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    concat = func.string_agg if dialect == "postgresql" else func.group_concat
    count, joined = (
        await session.execute(select(func.count(), concat(lines.c.line, literal("\n"))))
    ).one()
    ordered = sorted(joined.split("\n")) if count else []
    digest = hashlib.sha256("".join(f"{line}\n" for line in ordered).encode())
    return int(count), "sha256:" + digest.hexdigest()
