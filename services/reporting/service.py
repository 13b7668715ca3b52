"""The reporting service: two consumers (booking events, dispatch events) feeding the
projection, and the monthly report built from it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from contracts.booking.events import BookingCancelled, BookingConfirmed, BookingNoShow
from contracts.dispatch import RouteCompleted, RoutePlanned
from contracts.topics import BOOKING_EVENTS, DISPATCH_EVENTS
from services.reporting import store
from services.reporting.factors import FactorCatalogue
from services.reporting.handlers import ReportingHandlers
from services.reporting.report import build_report
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
            },
            description="Confirmed consignments (baseline), cancellations and no-shows.",
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

    async def report(
        self, city_id: str, month: str, *, now: datetime | None = None
    ) -> dict[str, Any]:
        async with self.sessions() as session:
            return await build_report(session, self.catalogue, city_id, month, now=now)

    async def replay(
        self,
        *,
        progress: Callable[[int, int], None] | None = None,
        idle_timeout: float = 30.0,
    ) -> ReplayStats:
        """Re-read both topics from the beginning into this service's (fresh) database,
        through the live consumers' apply path (services/runtime/replay.py)."""
        return await replay(self, progress=progress, idle_timeout=idle_timeout)
