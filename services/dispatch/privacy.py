"""Dispatch's part of the personal data purge (docs/privacy.md).

A stop done (delivered, or returned to its carrier) more than the retention ago keeps its
ids, parcels, weight and status; its coordinates are rounded to about a kilometre, its
``reason`` (which quotes what the driver's app reported of a failed delivery, free text)
is dropped, and its proof of delivery loses the recipient's name and the references to
the signature and photo (its place rounded too). A route completed more than the
retention ago keeps its figures; the stops' coordinates in its planned payload are
rounded. ``purged_at`` marks a row done, so each
is rewritten once. Stops still open are left alone, however old: dispatch still needs
where they go.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.domain import RouteStatus, StopStatus
from services.dispatch.tables import routes, stops
from services.runtime.privacy import Counts, coarse, scrub, scrub_proof

BATCH = 500
DONE = (StopStatus.DELIVERED.value, StopStatus.RETURNED.value)
s, r = stops.c, routes.c

_DUE_STOPS = (
    select(s.booking_id, s.stop_id, s.lat, s.lon, s.proof)
    .where(s.purged_at.is_(None), s.updated_at < bindparam("b_before"), s.status.in_(DONE))
    .limit(BATCH)
)
_ANONYMISE_STOP = (
    update(stops)
    .where(and_(s.booking_id == bindparam("b_booking_id"), s.stop_id == bindparam("b_stop_id")))
    .values(
        lat=bindparam("lat"),
        lon=bindparam("lon"),
        reason=None,
        proof=bindparam("proof"),
        purged_at=bindparam("at"),
    )
    .execution_options(synchronize_session=False)
)
_DUE_ROUTES = (
    select(r.id, r.planned)
    .where(
        r.purged_at.is_(None),
        r.completed_at < bindparam("b_before"),
        r.status == RouteStatus.COMPLETED.value,
    )
    .limit(BATCH)
)
_ANONYMISE_ROUTE = (
    update(routes)
    .where(r.id == bindparam("b_id"))
    .values(planned=bindparam("planned"), purged_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)


async def purge(session: AsyncSession, before: datetime, now: datetime) -> Counts:
    done_stops = 0
    while rows := (await session.execute(_DUE_STOPS, {"b_before": before})).all():
        await session.execute(
            _ANONYMISE_STOP,
            [
                {
                    "b_booking_id": row.booking_id,
                    "b_stop_id": row.stop_id,
                    "lat": coarse(row.lat),
                    "lon": coarse(row.lon),
                    "proof": scrub_proof(row.proof),
                    "at": now,
                }
                for row in rows
            ],
        )
        done_stops += len(rows)
    done_routes = 0
    while completed := (await session.execute(_DUE_ROUTES, {"b_before": before})).all():
        await session.execute(
            _ANONYMISE_ROUTE,
            [{"b_id": row.id, "planned": scrub(row.planned), "at": now} for row in completed],
        )
        done_routes += len(completed)
    return {"stops (lat, lon, reason, proof)": done_stops, "routes (planned stops)": done_routes}
