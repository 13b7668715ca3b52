"""The route side of reporting's projection: a planned route, the consignments it
carries (``route_consignments``, ``stop_claims``), and its completion.

Only the route handlers (handlers.py ``on_route_planned``, ``on_route_completed``) read
and write these rows, and the consignment side (store.py) never needs them: they are
apart so that store.py keeps the tables and the consignments' writes. The tables stay in
store.py, on the one metadata the migrations and queries.py read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.store import route_consignments, routes, stop_claims
from services.runtime.db import insert_ignoring, rowcount

# Like store.py's: the statements of the hot path are built once, values bound (``b_…``).


async def add_route(session: AsyncSession, **row: Any) -> bool:
    statement = insert_ignoring(session, routes, "route_id")
    return rowcount(await session.execute(statement, row)) == 1


async def claim_stop(
    session: AsyncSession, *, booking_id: str, stop_id: str, route_id: str
) -> bool:
    """A stop's baseline is counted on the first route that carries it, not again when a
    failed stop is planned on a later route."""
    statement = insert_ignoring(session, stop_claims, "booking_id", "stop_id")
    row = dict(booking_id=booking_id, stop_id=stop_id, route_id=route_id)
    return rowcount(await session.execute(statement, row)) == 1


async def add_route_consignments(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(route_consignments.insert(), list(rows))


_FIND_ROUTE = select(routes).where(routes.c.route_id == bindparam("b_route_id"))
_ROUTE_ALLOCATIONS = (
    select(route_consignments)
    .where(route_consignments.c.route_id == bindparam("b_route_id"))
    .order_by(route_consignments.c.booking_id)
)
_COMPLETE_ROUTE = update(routes).where(routes.c.route_id == bindparam("b_route_id"))
_UPDATE_ALLOCATION = update(route_consignments).where(  # SET: the columns in the parameters
    and_(
        route_consignments.c.route_id == bindparam("b_route_id"),
        route_consignments.c.booking_id == bindparam("b_booking_id"),
    )
)


async def find_route(session: AsyncSession, route_id: str) -> Any | None:
    return (await session.execute(_FIND_ROUTE, {"b_route_id": route_id})).first()


async def route_allocations(session: AsyncSession, route_id: str) -> list[Any]:
    return list((await session.execute(_ROUTE_ALLOCATIONS, {"b_route_id": route_id})).all())


async def complete_route(
    session: AsyncSession,
    route_id: str,
    *,
    actual_m: int,
    energy_wh: int | None,
    completed_at_ms: int,
) -> None:
    await session.execute(
        _COMPLETE_ROUTE,
        dict(
            b_route_id=route_id,
            actual_m=actual_m,
            energy_wh=energy_wh,
            completed_at_ms=completed_at_ms,
        ),
    )


async def update_allocation(
    session: AsyncSession, route_id: str, booking_id: str, **values: Any
) -> None:
    await session.execute(
        _UPDATE_ALLOCATION, {"b_route_id": route_id, "b_booking_id": booking_id, **values}
    )
