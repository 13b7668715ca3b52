"""Reporting's projection tables and their writes (the aggregation is in queries.py; a
route's rows are written by route_store.py).

Rows hold physical quantities in whole metres and watt-hours (exact, order-independent
sums); factors are applied to the aggregated sums afterwards, so a per-city override of a
factor changes the report without rewriting the projection.

- ``consignments``: one row per confirmed booking with what the baseline needs (depot,
  weight, volume, the local day of its slot; its stops in ``consignment_stops``), and its
  share of the baseline van tours and its depot -> hub trips in great-circle metres,
  computed per carrier-day by baselines.py when a report needs them (``derived_params``
  says with which parameters; NULL: not yet, or the carrier-day changed since).
- ``routes``: one row per planned route (planned km, then actual km/kWh on completion).
- ``route_consignments``: one row per (route, consignment) with the consignment's
  allocation share of the route and the route's metres/Wh apportioned to it. The monthly
  report is a GROUP BY over these rows (joined to ``consignments`` for the baseline).
- ``input_events``: every event the projection used, with a hash of its content, for the
  report's digest of inputs.
- ``hub_energy``: metered kWh per hub and month, from the operators' HTTP API (not from
  Kafka: a rebuild copies it over, see service.py).
- ``report_versions``: every published version of a closed month's report, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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
    Text,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import insert_ignoring, new_metadata, rowcount, upsert
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
    Column("slot_start_ms", Big, nullable=False),
    # BookingRescheduled.moves last applied: an earlier move published again is ignored
    Column("moves", Integer, nullable=False, default=0),
    # inputs of the baseline (methodology v2)
    Column("depot_lat", Float, nullable=True),
    Column("depot_lon", Float, nullable=True),
    Column("baseline_day", String(10), nullable=True),  # local date of the slot
    Column("weight_g", Big, nullable=True),
    # sum over its stops of kg x great-circle metres depot -> stop (transport activity)
    Column("activity_kgm", Big, nullable=True),
    # kg x great-circle metres depot -> hub (the trunk leg's transport activity)
    Column("trunk_activity_kgm", Big, nullable=True),
    # derived per carrier-day by baselines.py (great-circle metres, x1000 counts)
    Column("derived_params", String(32), nullable=True),
    Column("tours_gc_m", Big, nullable=True),
    Column("tours_city_gc_m", Big, nullable=True),
    Column("tours_x1000", Big, nullable=True),
    Column("tours_city_x1000", Big, nullable=True),
    Column("trunk_trips", Integer, nullable=True),
    Column("trunk_gc_m", Big, nullable=True),
    Column("trunk_city_gc_m", Big, nullable=True),
    Column("trunk_city_trips", Integer, nullable=True),
)
Index("ix_consignments_city_day", consignments.c.city_id, consignments.c.baseline_day)

consignment_stops = Table(
    "consignment_stops",
    metadata,
    Column("booking_id", String(100), primary_key=True),
    Column("stop_id", String(64), primary_key=True),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("parcels", Integer, nullable=False),
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
    Column("stops", Integer, nullable=False),  # stop visits planned, re-plans included
    Column("parcels", Integer, nullable=False),  # parcels planned, re-plans included
    Column("baseline_parcels", Integer, nullable=False),  # parcels first routed here
    # stops first routed here: a stop planned again after a failure counts once
    Column("claimed_stops", Integer, nullable=False, server_default="0"),
    # kg x great-circle metres hub -> stop of its stops on this route (last-mile activity)
    Column("activity_kgm", Big, nullable=False, server_default="0"),
    # the route's one trip apportioned by share, x1000 (diesel vans in the city)
    Column("trip_x1000", Integer, nullable=False, server_default="0"),
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

hub_energy = Table(
    "hub_energy",
    metadata,
    Column("hub_id", String(64), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("wh", Big, nullable=False),  # metered, whole watt-hours
    Column("supplier_gco2e_per_kwh", Float, nullable=True),  # market-based, if declared
    Column("meter", String(200), nullable=False),
    Column("note", String(1000), nullable=False),
    Column("reported_by", String(200), nullable=False),
    Column("reported_at_ms", Big, nullable=False),
    Column("revision", Integer, nullable=False),
)

report_versions = Table(
    "report_versions",
    metadata,
    Column("city_id", String(64), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("version_id", String(80), nullable=False),
    Column("published_at_ms", Big, nullable=False),
    Column("methodology_version", String(20), nullable=False),
    Column("factors_version", String(200), nullable=False),
    Column("factors_digest", String(80), nullable=False),
    Column("inputs_digest", String(80), nullable=False),
    Column("body", Text, nullable=False),  # the JSON as published
)


# The writes of the consumers' hot paths are built once (per dialect, for ON CONFLICT:
# db.insert_ignoring, db.upsert) and take their values as bind parameters (``b_…``, apart
# from column names): building a statement costs more CPU than running it.


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
    sha = content_sha256(data)
    await session.execute(
        insert_ignoring(session, input_events, "event_id"),
        dict(
            event_id=event_id,
            event_type=event_type,
            booking_id=booking_id,
            route_id=route_id,
            content_sha256=sha,
            digest_line=digest_line(event_id, sha),
        ),
    )


async def upsert_city(session: AsyncSession, **row: Any) -> None:
    statement = upsert(session, cities, "city_id", "name", "country", "timezone")
    await session.execute(statement, row)


async def upsert_hub(session: AsyncSession, **row: Any) -> None:
    statement = upsert(session, hubs, "hub_id", "city_id", "name", "lat", "lon")
    await session.execute(statement, row)


async def add_consignment(session: AsyncSession, **row: Any) -> bool:
    """First confirmation wins: a re-sent confirmation of the same booking changes nothing."""
    statement = insert_ignoring(session, consignments, "booking_id")
    return rowcount(await session.execute(statement, row)) == 1


_SET_CONSIGNMENT_STATUS = update(consignments).where(
    consignments.c.booking_id == bindparam("b_booking_id")
)


async def set_consignment_status(session: AsyncSession, booking_id: str, status: str) -> bool:
    """A cancelled or no-show consignment leaves its carrier-day's tours: they are
    computed again (derived_params cleared)."""
    result = await session.execute(
        _SET_CONSIGNMENT_STATUS,
        {"b_booking_id": booking_id, "status": status, "derived_params": None},
    )
    return rowcount(result) == 1


async def reschedule_consignment(
    session: AsyncSession, booking_id: str, *, slot_start_ms: int, local_day: Any, moves: int
) -> bool | None:
    """A booking moved to another slot: its consignment takes the new slot and local day
    (``local_day``: a function of the city's timezone name to the day). Both carrier-days
    it left and joined are computed again (derived_params cleared: the one it joined by
    this row, the one it left by its other rows). None: an unknown booking; False: a move
    not newer than the last applied (booking published an earlier answer again)."""
    c = consignments.c
    row = (
        await session.execute(
            select(c.city_id, c.carrier_id, c.baseline_day, c.moves, cities.c.timezone)
            .join(cities, cities.c.city_id == c.city_id)
            .where(c.booking_id == booking_id)
        )
    ).first()
    if row is None:
        return None
    if row.moves >= moves:
        return False
    day = local_day(row.timezone)
    await session.execute(
        update(consignments)
        .where(c.booking_id == booking_id)
        .values(slot_start_ms=slot_start_ms, baseline_day=day, moves=moves, derived_params=None)
    )
    if row.baseline_day is not None and row.baseline_day != day:
        await session.execute(
            update(consignments)
            .where(
                c.city_id == row.city_id,
                c.carrier_id == row.carrier_id,
                c.baseline_day == row.baseline_day,
            )
            .values(derived_params=None)
        )
    return True


async def find_city(session: AsyncSession, city_id: str) -> Any | None:
    return (await session.execute(select(cities).where(cities.c.city_id == city_id))).first()


async def city_ids(session: AsyncSession) -> list[str]:
    return list(
        (await session.execute(select(cities.c.city_id).order_by(cities.c.city_id))).scalars()
    )


async def city_months(session: AsyncSession, city_id: str) -> list[Any]:
    """The months (local) in which the city's hubs had consignments: how many, on how
    many days, the first and last of them."""
    month = func.substr(consignments.c.baseline_day, 1, 7)
    rows = await session.execute(
        select(
            month.label("month"),
            func.count().label("consignments"),
            func.count(consignments.c.baseline_day.distinct()).label("days"),
            func.min(consignments.c.baseline_day).label("first_day"),
            func.max(consignments.c.baseline_day).label("last_day"),
        )
        .where(consignments.c.city_id == city_id, consignments.c.baseline_day.is_not(None))
        .group_by(month)
        .order_by(month)
    )
    return list(rows)


async def city_hubs(session: AsyncSession, city_id: str) -> dict[str, str]:
    rows = await session.execute(
        select(hubs.c.hub_id, hubs.c.name).where(hubs.c.city_id == city_id)
    )
    return {r.hub_id: r.name for r in rows}


async def add_consignment_stops(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(
            insert_ignoring(session, consignment_stops, "booking_id", "stop_id"), list(rows)
        )
