"""The monthly aggregation over reporting's projection (see store.py for the tables).

One GROUP BY over the month's (route, consignment) rows gives exact integer sums per local
day x hub x carrier x vehicle type; report.py applies the factors to those few hundred
rows. The same statements run on PostgreSQL and SQLite.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.store import consignments, input_events, route_consignments


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
            # a stop (and its parcels) counts on the route that claimed it first
            rc.claimed_stops.label("stops"),
            rc.delivered_stops,
            rc.baseline_parcels.label("parcels"),
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
