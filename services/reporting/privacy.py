"""Reporting's part of the personal data purge (docs/privacy.md): keep only what a closed
month's report needs.

Reporting stores each consignment's stops (``consignment_stops``: coordinates) for one
purpose: the baseline van tours of its carrier-day (baselines.py), swept from them when a
report is built. Once a day's month is closed and the day ended more than the retention
ago, its tours are computed (with the factors in force, exactly as the next report would)
and stored on the consignments, and its stops are deleted. The report of that month is
then built from the same stored figures as before, and comes out byte for byte the same
(the published version: publication.py). The depot (a carrier's business address) stays:
the carrier's depot -> hub trips are computed from it.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import baselines, store
from services.reporting.domain import CLOSING_GRACE
from services.reporting.factors import FactorCatalogue
from services.runtime.db import rowcount
from services.runtime.privacy import Counts

log = logging.getLogger(__name__)


def last_purgeable_day(timezone: str, before: datetime, now: datetime) -> date:
    """The last local day that both ended before ``before`` and lies in a closed month
    (domain.month_is_closed: its end plus the closing grace has passed at ``now``)."""
    tz = ZoneInfo(timezone)
    ended = before.astimezone(tz).date() - timedelta(days=1)
    closing = (now - CLOSING_GRACE).astimezone(tz).date()
    last_closed = closing.replace(day=1) - timedelta(days=1)
    return min(ended, last_closed)


async def purge(
    session: AsyncSession, catalogue: FactorCatalogue, before: datetime, now: datetime
) -> Counts:
    deleted = 0
    c = store.consignments.c
    for city in (await session.execute(select(store.cities))).all():
        up_to = last_purgeable_day(city.timezone, before, now).isoformat()
        try:
            await baselines.refresh(session, catalogue.for_city(city.city_id), city.city_id, up_to)
        except baselines.LegacyProjection as exc:
            log.warning("%s: stops not purged: %s", city.city_id, exc)
            continue
        of_days = select(c.booking_id).where(c.city_id == city.city_id, c.baseline_day <= up_to)
        result = await session.execute(
            delete(store.consignment_stops).where(store.consignment_stops.c.booking_id.in_(of_days))
        )
        deleted += rowcount(result)
    return {"consignment_stops (deleted)": deleted}
