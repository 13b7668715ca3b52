"""The booking service: carriers' commands in, booking events out (through the outbox)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.topics import BOOKING_COMMANDS, BOOKING_EVENTS
from services.booking import privacy, series_rows, store
from services.booking.answers import BookingAnswers
from services.booking.catalogue import load_catalogue
from services.booking.handlers import BookingHandlers
from services.runtime.service import Service
from services.runtime.wiring import Consumes, Publishes, ServiceSpec

log = logging.getLogger(__name__)

SPEC = ServiceSpec(
    name="booking",
    migrations=Path(__file__).parent / "migrations",
    health_port=8081,
    description="Hubs, the slot grid, capacity and the booking lifecycle.",
    consumes=(
        Consumes(
            BOOKING_COMMANDS,
            consumer="booking",
            # requests, cancellations and check-ins of a fetched batch are decided
            # together, in order: a few statements per batch (handlers.py, ledger.py)
            handlers={},
            batch=BookingHandlers.decide,
            description="Carriers' booking commands, keyed by hub id. Each gets exactly one "
            "answer on microhub.booking.events.v1 (its causationid and causationsource are "
            "the command's id and source), or, when it cannot be read, a record in the DLQ.",
            answers=BookingAnswers(),
        ),
    ),
    publishes=(
        Publishes(
            BOOKING_EVENTS,
            description="Outcomes of carriers' commands and no-shows, keyed by hub id.",
        ),
    ),
)


class BookingService(Service):
    spec = SPEC
    outbox = store.outbox
    inbox = store.inbox

    def make_handlers(self) -> BookingHandlers:
        # No clock check here: a carrier's clock is checked where its commands come in,
        # against the time they are received (the gateway's ingress); what arrives here
        # was stamped with that receipt time, or the HTTP API's clock, and published later
        # by a relay: comparing it with this record's timestamp would refuse a backlog.
        return BookingHandlers(
            no_show_grace=timedelta(minutes=self.settings.no_show_grace_minutes),
        )

    async def on_start(self) -> None:
        await self.load_hubs(self.settings.hubs_file)
        if self.settings.sweep_interval_seconds > 0:
            self.every(self.settings.sweep_interval_seconds, self.sweep_no_shows, "no-show-sweep")

    def http_routers(self) -> list[Any]:
        from services.booking import (
            api,
            api_v2,
            api_waitlist,
            calendar_feed,
            closures_api,
            scorecards_api,
            series_api,
        )
        from services.booking.http_commands import ingress_publisher
        from services.runtime.topic_presence import TopicPresence

        # through the carrier's own topic and the gateway, like a carrier's Kafka client;
        # a carrier without a topic is told so at once (403 unknown_carrier)
        presence = TopicPresence(self.bootstrap, self.settings, client_id=self.name)
        publish = ingress_publisher(self.broker, self.settings.topic, presence=presence)
        return [
            lambda principal: api.router(units=self.units, publish=publish, principal=principal),
            lambda principal: api_v2.router(units=self.units, publish=publish, principal=principal),
            lambda principal: api_waitlist.router(
                units=self.units, publish=publish, principal=principal
            ),
            lambda principal: scorecards_api.router(units=self.units, principal=principal),
            lambda principal: series_api.router(
                units=self.units, publish=publish, principal=principal
            ),
            lambda principal: calendar_feed.router(units=self.units, principal=principal),
            # an operator's closure names no carrier: it cannot take a carrier's topic
            lambda principal: closures_api.router(
                units=self.units,
                publish=closures_api.internal_publisher(
                    self.broker, self.settings.topic(BOOKING_COMMANDS.name)
                ),
                principal=principal,
            ),
        ]

    async def purge_tables(
        self, session: AsyncSession, before: datetime, now: datetime
    ) -> dict[str, int]:
        return await privacy.purge(session, before, now) | await series_rows.purge(
            session, before, now
        )

    async def load_hubs(self, path: Path | None) -> int:
        hubs = load_catalogue(path)
        async with self.unit_of_work() as uow:
            for hub in hubs:
                await store.upsert_hub(uow.session, hub)
        log.info("loaded %d hubs from %s", len(hubs), path or "the sample catalogue")
        return len(hubs)

    async def sweep_no_shows(self, now: datetime | None = None) -> int:
        """The wall-clock nudge for quiet hubs: same code path as the event-time sweep."""
        handlers: BookingHandlers = self.handlers
        async with self.unit_of_work() as uow:
            return await handlers.sweep_no_shows(uow, now=now or datetime.now(UTC))
