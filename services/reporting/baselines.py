"""The baseline van tours and the carriers' depot -> hub trips, per carrier-day, stored on
the consignments (great-circle metres) when a report needs them.

A carrier-day's tours depend on every consignment of that carrier on that local day and on
the van, the tour grouping and the city boundary; so they cannot be computed when one
booking is confirmed. Confirmations, cancellations and no-shows clear a consignment's
``derived_params``; ``refresh`` computes every carrier-day that has such a consignment, or
whose parameters differ from the stored digest, before the report aggregates. The result
is a pure function of the inputs and parameters, so two reports that refresh at once
write the same values, and a rebuilt projection gets the same numbers.

Once a closed month's stops are purged (privacy.py), its tours are kept as they were
computed: a carrier-day computed again (new parameters, a late cancellation) keeps them,
zeroes a consignment no longer confirmed, and sweeps only consignments that still have
their stops.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import domain, store
from services.reporting.domain import Point
from services.reporting.factors import FactorSet
from services.reporting.geo import Polygon
from services.reporting.tours import Shipment, TourShare, Van, baseline_shares

log = logging.getLogger(__name__)

c = store.consignments.c

_WRITE = (
    update(store.consignments)
    .where(
        and_(
            c.booking_id == bindparam("b_booking_id"),
            # a cancellation that arrived meanwhile keeps its carrier-day stale
            c.status == bindparam("b_status"),
        )
    )
    .values(
        derived_params=bindparam("derived_params"),
        tours_gc_m=bindparam("tours_gc_m"),
        tours_city_gc_m=bindparam("tours_city_gc_m"),
        tours_x1000=bindparam("tours_x1000"),
        tours_city_x1000=bindparam("tours_city_x1000"),
        trunk_trips=bindparam("trunk_trips"),
        trunk_gc_m=bindparam("trunk_gc_m"),
        trunk_city_gc_m=bindparam("trunk_city_gc_m"),
        trunk_city_trips=bindparam("trunk_city_trips"),
    )
)


class LegacyProjection(ValueError):
    """Consignments confirmed before methodology v2 lack the baseline's inputs."""


def trunk_trips(
    *,
    depot: Point,
    hub: Point,
    weight_kg: float,
    volume_m3: float,
    payload_kg: float,
    volume_cap_m3: float,
    city: Polygon | None,
) -> dict[str, int]:
    """The carrier's own vehicle drives depot -> hub -> depot as often as its capacity
    requires (each booking is one arrival at the hub's dock)."""
    trips = domain.trips_needed(weight_kg, volume_m3, payload_kg, volume_cap_m3)
    metres = round(trips * 2 * domain.great_circle_km(depot, hub) * 1000)
    inside = city.inside_share(depot, hub) if city is not None else 0.0
    return {
        "trunk_trips": trips,
        "trunk_gc_m": metres,
        "trunk_city_gc_m": round(metres * inside),
        "trunk_city_trips": trips if inside > 0 else 0,
    }


def _kept(row: Any, stops: dict[str, list[Any]]) -> TourShare | None:
    """The tours a confirmed consignment got before its stops were purged (privacy.py):
    they cannot be swept again, so they stay as computed (docs/privacy.md)."""
    if row.status != "confirmed" or stops[row.booking_id] or row.tours_gc_m is None:
        return None
    return TourShare(row.tours_gc_m, row.tours_city_gc_m, row.tours_x1000, row.tours_city_x1000)


async def stale_carrier_days(
    session: AsyncSession, factors: FactorSet, city_id: str, up_to_day: str
) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(c.carrier_id, c.baseline_day, c.derived_params, func.count())
        .where(c.city_id == city_id, or_(c.baseline_day <= up_to_day, c.baseline_day.is_(None)))
        .group_by(c.carrier_id, c.baseline_day, c.derived_params)
    )
    digests: dict[str, str] = {}
    stale: set[tuple[str, str]] = set()
    for carrier, day, params, _count in rows:
        if day is None:
            raise LegacyProjection(
                f"the reporting projection of {city_id!r} holds consignments confirmed before "
                "methodology v2 (no depot and stops stored): rebuild it from the topics with "
                "`microhub reporting rebuild` (docs/deploy.md)"
            )
        if carrier not in digests:
            digests[carrier] = factors.tour_parameters_digest([carrier])
        if params != digests[carrier]:
            stale.add((carrier, day))
    return sorted(stale)


async def refresh(session: AsyncSession, factors: FactorSet, city_id: str, up_to_day: str) -> int:
    """Compute the carrier-days of ``city_id`` up to ``up_to_day`` that are stale; returns
    how many. Runs in the caller's transaction."""
    stale = await stale_carrier_days(session, factors, city_id, up_to_day)
    if not stale:
        return 0
    polygon = factors.polygon()
    city = Polygon(polygon) if polygon else None
    pooled = factors.tour_grouping == "carrier_day"
    max_stops = int(factors.assumption("baseline.max_stops_per_tour"))
    van = Van(
        factors.value("vehicle.diesel_van.payload_kg"),
        factors.value("vehicle.diesel_van.load_volume_m3"),
        max_stops,
    )
    hubs = {
        r.hub_id: Point(r.lat, r.lon)
        for r in await session.execute(
            select(store.hubs.c.hub_id, store.hubs.c.lat, store.hubs.c.lon).where(
                store.hubs.c.city_id == city_id
            )
        )
    }
    for carrier, day in stale:
        rows = (
            await session.execute(
                select(store.consignments).where(
                    c.city_id == city_id, c.carrier_id == carrier, c.baseline_day == day
                )
            )
        ).all()
        stops: dict[str, list[Any]] = defaultdict(list)
        for s in await session.execute(
            select(store.consignment_stops)
            .where(store.consignment_stops.c.booking_id.in_([r.booking_id for r in rows]))
            .order_by(store.consignment_stops.c.booking_id, store.consignment_stops.c.stop_id)
        ):
            stops[s.booking_id].append((s.stop_id, Point(s.lat, s.lon), s.parcels))
        live = [
            Shipment(
                r.booking_id,
                Point(r.depot_lat, r.depot_lon),
                r.weight_kg,
                r.volume_m3,
                r.parcel_count,
                tuple(stops[r.booking_id]),
            )
            for r in rows
            if r.status == "confirmed" and stops[r.booking_id]
        ]
        shares = baseline_shares(live, van, city, pooled=pooled)
        digest = factors.tour_parameters_digest([carrier])
        payload = factors.value(factors.trunk_key(carrier, "payload_kg"))
        volume = factors.value(factors.trunk_key(carrier, "load_volume_m3"))
        updates = []
        for r in rows:
            share = shares.get(r.booking_id) or _kept(r, stops) or TourShare()
            if r.status == "confirmed" and r.hub_id in hubs:
                trunk = trunk_trips(
                    depot=Point(r.depot_lat, r.depot_lon),
                    hub=hubs[r.hub_id],
                    weight_kg=r.weight_kg,
                    volume_m3=r.volume_m3,
                    payload_kg=payload,
                    volume_cap_m3=volume,
                    city=city,
                )
            else:  # cancelled, no-show: no trips at all
                trunk = dict.fromkeys(
                    ("trunk_trips", "trunk_gc_m", "trunk_city_gc_m", "trunk_city_trips"), 0
                )
            updates.append(
                {
                    "b_booking_id": r.booking_id,
                    "b_status": r.status,
                    "derived_params": digest,
                    "tours_gc_m": share.gc_m,
                    "tours_city_gc_m": share.city_gc_m,
                    "tours_x1000": share.trips_x1000,
                    "tours_city_x1000": share.city_trips_x1000,
                    **trunk,
                }
            )
        if updates:
            await session.execute(_WRITE, updates)
    log.info("baseline tours of %d carrier-days of %s computed", len(stale), city_id)
    return len(stale)
