"""Energy of the hubs: meter readings per hub and month from the operators (HTTP API),
the month's plan (metered, else the default for the days it ran) and its allocation to
the parcels each hub handled.

ISO 14083 counts hub operations (lighting, heating, handling, charger losses) with
transport. A reading replaces the configured default (hub.default_kwh_per_day, flagged
"modelled") for that hub and month; a new reading of the same month replaces the old one
and raises its revision, which changes the month's input digest, so a published report of
a closed month gets a new version rather than a silent change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import domain, queries, store
from services.reporting.figures import Quantities

# the largest plausible month of a micro-hub: a warehouse with chargers for a whole fleet
MAX_KWH = 1_000_000


class MeterReading(BaseModel):
    """A hub's electricity use in one month, read from its meter."""

    model_config = ConfigDict(extra="forbid")

    kwh: float = Field(
        ge=0, le=MAX_KWH, allow_inf_nan=False, description="metered kWh of the month"
    )
    supplier_gco2e_per_kwh: float | None = Field(
        default=None,
        ge=0,
        le=2000,
        allow_inf_nan=False,
        description="the supplier's emission factor (market-based), when a supply contract states one",
    )
    meter: str = Field(default="", max_length=200, description="meter id or data source")
    note: str = Field(default="", max_length=1000)


class UnknownHub(LookupError):
    pass


class FutureMonth(ValueError):
    pass


async def record(
    session: AsyncSession,
    hub_id: str,
    month: str,
    reading: MeterReading,
    reported_by: str,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    year, mon = domain.parse_month(month)
    now = now or datetime.now(UTC)
    if (year, mon) > (now.year, now.month):
        raise FutureMonth(f"{month} has not begun: a meter reading is for a month that has")
    hub = (await session.execute(select(store.hubs).where(store.hubs.c.hub_id == hub_id))).first()
    if hub is None:
        raise UnknownHub(f"reporting knows no hub {hub_id!r}: no booking at it has been seen yet")
    he = store.hub_energy.c
    previous = (
        await session.execute(select(he.revision).where(he.hub_id == hub_id, he.month == month))
    ).scalar()
    row = {
        "hub_id": hub_id,
        "month": month,
        "wh": round(reading.kwh * 1000),
        "supplier_gco2e_per_kwh": reading.supplier_gco2e_per_kwh,
        "meter": reading.meter,
        "note": reading.note,
        "reported_by": reported_by[:200],
        "reported_at_ms": round(now.timestamp() * 1000),
        "revision": (previous or 0) + 1,
    }
    # (hub, month) is the key: runtime's upsert takes one key column, so insert or update
    if previous is None:
        await session.execute(store.hub_energy.insert(), row)
    else:
        await session.execute(
            update(store.hub_energy).where(he.hub_id == hub_id, he.month == month).values(**row)
        )
    return _public(row)


def _public(row: Any) -> dict[str, Any]:
    r = dict(row)
    return {
        "hub_id": r["hub_id"],
        "month": r["month"],
        "kwh": r["wh"] / 1000,
        "supplier_gco2e_per_kwh": r["supplier_gco2e_per_kwh"],
        "meter": r["meter"],
        "note": r["note"],
        "reported_by": r["reported_by"],
        "reported_at": datetime.fromtimestamp(r["reported_at_ms"] / 1000, UTC).isoformat(
            timespec="seconds"
        ),
        "revision": r["revision"],
    }


async def readings_of(session: AsyncSession, hub_id: str) -> list[dict[str, Any]] | None:
    if (
        await session.execute(select(store.hubs.c.hub_id).where(store.hubs.c.hub_id == hub_id))
    ).first() is None:
        return None
    he = store.hub_energy.c
    rows = await session.execute(
        select(store.hub_energy).where(he.hub_id == hub_id).order_by(he.month)
    )
    return [_public(r._mapping) for r in rows]


def _days_until(window: domain.MonthWindow, last_at_ms: int) -> int:
    """Local days of the month up to the day of the last route (the data's cut-off)."""
    return next(
        (i + 1 for i, (_d, _lo, hi) in enumerate(window.days) if last_at_ms < hi), len(window.days)
    )


def hub_energy_plan(
    window: domain.MonthWindow,
    closed: bool,
    hub_ids: list[str],
    groups: list[queries.Group],
    readings: dict[str, Any],
) -> dict[str, tuple[float | None, int, float | None, str]]:
    """Per hub of the city: (metered kWh or None, modelled days, supplier g/kWh, meter).
    A hub without a reading gets the default for every day of the month (up to the last
    route of an open month) if it handled anything that month, else nothing."""
    active = {g.hub_id for g in groups}
    last = max((g.last_at_ms for g in groups), default=window.start_ms)
    days = len(window.days) if closed else _days_until(window, last)
    plan = {}
    for hub in sorted(set(hub_ids) | set(readings) | active):
        reading = readings.get(hub)
        if reading is not None:
            plan[hub] = (reading.wh / 1000, 0, reading.supplier_gco2e_per_kwh, reading.meter)
        elif hub in active:
            plan[hub] = (None, days, None, "")
        else:
            plan[hub] = (None, 0, None, "")
    return plan


def allocate(
    groups: list[queries.Group], plan: dict[str, tuple[float | None, int, float | None, str]]
) -> tuple[list[tuple[queries.Group, Quantities]], dict[str, Quantities]]:
    """Each group's quantities, with its hub's energy allocated by parcels handled; a hub
    that handled no parcel keeps its energy unallocated (city and hub totals only)."""
    parcels: dict[str, int] = {}
    for g in groups:
        parcels[g.hub_id] = parcels.get(g.hub_id, 0) + g.parcels
    cells = []
    for g in groups:
        q = Quantities()
        q.add(g)
        metered, days, supplier, _meter = plan.get(g.hub_id, (None, 0, None, ""))
        if parcels.get(g.hub_id):
            f = g.parcels / parcels[g.hub_id]
            q.add_hub_energy(g.hub_id, None if metered is None else metered * f, days * f, supplier)
        cells.append((g, q))
    unallocated = {}
    for hub, (metered, days, supplier, _meter) in sorted(plan.items()):
        if not parcels.get(hub) and (metered or days):
            q = Quantities()
            q.add_hub_energy(hub, metered, days, supplier)
            unallocated[hub] = q
    return cells, unallocated
