"""The reporting service: two consumers (booking events, dispatch events) feeding the
projection, and the monthly report built from it."""

from __future__ import annotations

import asyncio
import calendar
import logging
from collections.abc import Callable
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingNoShow,
    BookingRescheduled,
)
from contracts.dispatch import RouteCompleted, RoutePlanned
from contracts.topics import BOOKING_EVENTS, DISPATCH_EVENTS
from services.reporting import hub_energy, privacy, publication, store
from services.reporting.factors import FactorCatalogue
from services.reporting.handlers import ReportingHandlers
from services.reporting.model import EmissionsReport
from services.reporting.report import UnknownCity, build_report
from services.runtime.db import writing
from services.runtime.replay import ReplayStats, replay
from services.runtime.service import Service
from services.runtime.wiring import Consumes, ServiceSpec

log = logging.getLogger(__name__)

BOOKINGS_CONSUMER = "reporting-bookings"
DISPATCH_CONSUMER = "reporting-dispatch"

SPEC = ServiceSpec(
    name="reporting",
    migrations=Path(__file__).parent / "migrations",
    health_port=8083,
    description="Projections of everything that happened, and the monthly emissions report.",
    consumes=(
        Consumes(
            BOOKING_EVENTS,
            consumer=BOOKINGS_CONSUMER,
            # rejections and check-ins are not part of the emissions flows: recorded only
            handlers={
                BookingConfirmed: ReportingHandlers.on_booking_event,
                BookingCancelled: ReportingHandlers.on_booking_event,
                BookingNoShow: ReportingHandlers.on_booking_event,
                BookingRescheduled: ReportingHandlers.on_booking_event,
            },
            description="Confirmed consignments (baseline), their moves to another slot "
            "(and day), cancellations and no-shows.",
        ),
        Consumes(
            DISPATCH_EVENTS,
            consumer=DISPATCH_CONSUMER,
            handlers={
                RoutePlanned: ReportingHandlers.on_dispatch_event,
                RouteCompleted: ReportingHandlers.on_dispatch_event,
            },
            description="Planned and completed last-mile routes (actual flows).",
        ),
    ),
)


class ReportingService(Service):
    spec = SPEC
    inbox = store.inbox

    @cached_property
    def catalogue(self) -> FactorCatalogue:
        """The emission factors; also needed by an HTTP-only instance (no consumers)."""
        return FactorCatalogue.load(self.settings.emission_factors_file)

    def make_handlers(self) -> ReportingHandlers:
        return ReportingHandlers(self.catalogue)

    def http_routers(self) -> list[Any]:
        from services.reporting import api

        return [lambda principal: api.router(self, principal)]

    async def purge_tables(
        self, session: AsyncSession, before: datetime, now: datetime
    ) -> dict[str, int]:
        return await privacy.purge(session, self.catalogue, before, now)

    async def report(
        self,
        city_id: str,
        month: str,
        *,
        now: datetime | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> EmissionsReport:
        """The month's report; a closed month's is published (the same bytes until its
        inputs, factors or methodology change: then a new version). Building it writes
        (baseline tours, the published version): as a writer of this database."""
        async with writing(self.engine), self.sessions() as session:
            return await build_report(
                session, self.catalogue, city_id, month, now=now, progress=progress
            )

    async def footprints(self, carrier_id: str, month: str) -> dict[str, Any] | None:
        from services.reporting.footprints import carrier_month

        async with self.sessions() as session:
            return await carrier_month(session, self.catalogue, carrier_id, month)

    async def published(self, city_id: str, month: str, number: int) -> bytes | None:
        async with self.sessions() as session:
            return await publication.stored(session, city_id, month, number)

    async def months(self, city_id: str, *, today: date | None = None) -> list[dict[str, Any]]:
        """The months with data of a city (the city page's month picker): each with its
        coverage, ``partial`` when data does not span the month or the month is still
        open. Raises UnknownCity (naming the known ones) for a city never seen."""
        async with self.sessions() as session:
            city = await store.find_city(session, city_id)
            if city is None:
                known = ", ".join(await store.city_ids(session)) or "none yet"
                raise UnknownCity(
                    f"no booking for city {city_id!r} has been seen (known cities: {known})"
                )
            rows = await store.city_months(session, city_id)
        local_today = today or datetime.now(ZoneInfo(city.timezone)).date()
        result = []
        for row in rows:
            first = date.fromisoformat(f"{row.month}-01")
            days_in_month = calendar.monthrange(first.year, first.month)[1]
            open_month = (local_today.year, local_today.month) <= (first.year, first.month)
            result.append(
                {
                    "month": row.month,
                    "consignments": row.consignments,
                    "days_with_data": row.days,
                    "days_in_month": days_in_month,
                    "first_day": row.first_day,
                    "last_day": row.last_day,
                    "open": open_month,
                    "partial": open_month
                    or row.first_day != f"{row.month}-01"
                    or row.last_day != f"{row.month}-{days_in_month:02d}",
                }
            )
        return result

    async def report_versions(self, city_id: str, month: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            return await publication.versions(session, city_id, month)

    async def put_hub_energy(
        self, hub_id: str, month: str, reading: Any, reported_by: str
    ) -> dict[str, Any]:
        async with self.unit_of_work() as uow:
            return await hub_energy.record(uow.session, hub_id, month, reading, reported_by)

    async def hub_energy(self, hub_id: str) -> list[dict[str, Any]] | None:
        async with self.sessions() as session:
            return await hub_energy.readings_of(session, hub_id)

    async def carry_over(self, source_url: str) -> dict[str, int]:
        """Copy what does not come from Kafka (meter readings, published report versions)
        from another reporting database into this one: a rebuild must not lose them."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import DBAPIError

        from services.runtime.db import make_engine

        url = make_url(source_url)
        sqlite_file = Path(url.database or "")
        if url.get_backend_name() == "sqlite" and not await asyncio.to_thread(sqlite_file.exists):
            return {}  # nothing to carry over (and do not create an empty file)
        source = make_engine(source_url)
        counts: dict[str, int] = {}
        try:
            for table in (store.hub_energy, store.report_versions):
                try:
                    async with source.connect() as conn:
                        rows = [dict(r._mapping) for r in await conn.execute(select(table))]
                except DBAPIError:
                    log.warning("%s has no %s table to carry over", source_url, table.name)
                    continue
                if rows:
                    async with self.unit_of_work() as uow:
                        await uow.session.execute(table.insert(), rows)
                counts[table.name] = len(rows)
        finally:
            await source.dispose()
        return counts

    async def replay(
        self,
        *,
        progress: Callable[[int, int], None] | None = None,
        idle_timeout: float = 30.0,
    ) -> ReplayStats:
        """Re-read both topics from the beginning into this service's (fresh) database,
        through the live consumers' apply path (services/runtime/replay.py)."""
        return await replay(self, progress=progress, idle_timeout=idle_timeout)
