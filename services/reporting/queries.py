"""The monthly aggregation over reporting's projection (see store.py for the tables).

One GROUP BY over the month's (route, consignment) rows gives exact integer sums per local
day x hub x carrier x vehicle type (another, per month, for the 12-month trend);
figures.py applies the factors to those few hundred rows. The same statements run on
PostgreSQL and SQLite.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import and_, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.store import consignments, hub_energy, input_events, route_consignments


@dataclass(frozen=True)
class Group:
    """One cell of the month: a local day (or month) x hub x carrier x vehicle type, with
    exact sums. Baseline and trunk figures are the consignments' great-circle metres and
    x1000 counts, each counted with the routes that carry its stops in proportion to its
    parcels first routed there."""

    day: str
    hub_id: str
    carrier_id: str
    vehicle_type: str
    allocations: int = 0
    stops: int = 0  # stops first routed here (a re-planned stop counts once)
    stop_visits: int = 0  # stop visits planned, re-plans included
    delivered_stops: int = 0
    parcels: int = 0  # parcels first routed here: the parcels the hub handled
    last_mile_m: int = 0
    actual_km_m: int = 0
    modelled_energy_m: int = 0
    measured_wh: int = 0
    last_mile_kgm: int = 0  # kg x great-circle m, hub -> stop
    last_mile_trips_x1000: int = 0
    mass_g: int = 0
    chain_kgm: int = 0  # kg x great-circle m, depot -> stop: the shipments' activity
    tours_m: int = 0
    tours_city_m: int = 0
    tours_x1000: int = 0
    tours_city_x1000: int = 0
    trunk_m: int = 0
    trunk_city_m: int = 0
    trunk_x1000: int = 0
    trunk_city_x1000: int = 0
    trunk_kgm: int = 0
    last_at_ms: int = 0


SUMMED = [f.name for f in fields(Group)][4:-1]


def _fraction(total: Any) -> Any:
    """total x baseline_parcels / parcel_count, rounded to a whole number in integer
    arithmetic (identical on PostgreSQL and SQLite, whatever the row order)."""
    c = consignments.c
    rc = route_consignments.c
    return (total * rc.baseline_parcels * 2 + c.parcel_count) // (c.parcel_count * 2)


def groups_query(
    city_id: str,
    periods: Sequence[tuple[str, int, int]],
    *,
    carrier_id: str | None = None,
    by_shipment: bool = False,
):
    """One GROUP BY over the (route, consignment) rows of the periods (the month's days,
    or the trend's months); ``by_shipment`` groups one carrier's rows per consignment
    instead of per period (the carriers' footprints). The period is a CASE over the boundaries in UTC (computed from
    the city's time zone), so the same query runs on PostgreSQL and SQLite and handles
    DST days."""
    rc = route_consignments.c
    c = consignments.c
    live = c.status == "confirmed"
    zero = literal(0)
    period = case(
        *[(rc.at_ms < hi, literal(i)) for i, (_d, _lo, hi) in enumerate(periods)],
        else_=literal(len(periods) - 1),
    )

    def live_part(column: Any) -> Any:
        return case((live, _fraction(func.coalesce(column, zero))), else_=zero)

    per_row = (
        select(
            period.label("period"),
            rc.hub_id,
            rc.carrier_id,
            rc.vehicle_type,
            literal(1).label("allocations"),
            rc.claimed_stops.label("stops"),
            rc.stops.label("stop_visits"),
            rc.delivered_stops,
            rc.baseline_parcels.label("parcels"),
            rc.alloc_m.label("last_mile_m"),
            case((rc.km_actual, rc.alloc_m), else_=zero).label("actual_km_m"),
            case((rc.alloc_wh.is_(None), rc.alloc_m), else_=zero).label("modelled_energy_m"),
            func.coalesce(rc.alloc_wh, zero).label("measured_wh"),
            rc.activity_kgm.label("last_mile_kgm"),
            rc.trip_x1000.label("last_mile_trips_x1000"),
            live_part(c.weight_g).label("mass_g"),
            live_part(c.activity_kgm).label("chain_kgm"),
            live_part(c.tours_gc_m).label("tours_m"),
            live_part(c.tours_city_gc_m).label("tours_city_m"),
            live_part(c.tours_x1000).label("tours_x1000"),
            live_part(c.tours_city_x1000).label("tours_city_x1000"),
            live_part(c.trunk_gc_m).label("trunk_m"),
            live_part(c.trunk_city_gc_m).label("trunk_city_m"),
            live_part(c.trunk_trips * 1000).label("trunk_x1000"),
            live_part(c.trunk_city_trips * 1000).label("trunk_city_x1000"),
            live_part(c.trunk_activity_kgm).label("trunk_kgm"),
            rc.at_ms,
            rc.booking_id,
        )
        .select_from(route_consignments.outerjoin(consignments, c.booking_id == rc.booking_id))
        .where(
            rc.city_id == city_id,
            rc.at_ms >= periods[0][1],
            rc.at_ms < periods[-1][2],
            *([rc.carrier_id == carrier_id] if carrier_id is not None else []),
        )
        .subquery("per_row")
    )
    r = per_row.c
    first = r.booking_id if by_shipment else r.period
    keys = (first, r.hub_id, r.carrier_id, r.vehicle_type)
    return select(
        *keys, *(func.sum(getattr(r, name)) for name in SUMMED), func.max(r.at_ms)
    ).group_by(*keys)


async def period_groups(
    session: AsyncSession, city_id: str, periods: Sequence[tuple[str, int, int]]
) -> list[Group]:
    rows = (await session.execute(groups_query(city_id, periods))).all()
    groups = [
        Group(periods[int(r[0])][0], r[1], r[2], r[3], *(int(v or 0) for v in r[4:])) for r in rows
    ]
    # sorted here (not ORDER BY) so that the order never depends on a database collation
    return sorted(groups, key=lambda g: (g.day, g.hub_id, g.carrier_id, g.vehicle_type))


async def shipment_groups(
    session: AsyncSession, city_id: str, carrier_id: str, lo: int, hi: int
) -> list[Group]:
    """One carrier's month per consignment (``Group.day`` holds the booking id)."""
    statement = groups_query(city_id, [("month", lo, hi)], carrier_id=carrier_id, by_shipment=True)
    rows = (await session.execute(statement)).all()
    groups = [Group(r[0], r[1], r[2], r[3], *(int(v or 0) for v in r[4:])) for r in rows]
    return sorted(groups, key=lambda g: (g.day, g.hub_id, g.vehicle_type))


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


async def input_digest(
    session: AsyncSession, city_id: str, lo: int, hi: int, extra_lines: Sequence[str] = ()
) -> tuple[int, str]:
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
    lines_of_month: list[str] = joined.split("\n") if count else []
    lines_of_month += extra_lines
    ordered = sorted(lines_of_month)
    digest = hashlib.sha256("".join(f"{line}\n" for line in ordered).encode())
    return len(ordered), "sha256:" + digest.hexdigest()


async def hub_energy_readings(
    session: AsyncSession, hub_ids: Sequence[str], months: Sequence[str]
) -> list[Any]:
    """Metered kWh of these hubs in these months (the operators' API)."""
    if not hub_ids or not months:
        return []
    rows = await session.execute(
        select(hub_energy).where(
            hub_energy.c.hub_id.in_(list(hub_ids)), hub_energy.c.month.in_(list(months))
        )
    )
    return sorted(rows.all(), key=lambda r: (r.month, r.hub_id))
