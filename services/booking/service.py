"""The booking service: carriers' commands in, booking events out (through the outbox)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts.booking import (
    BookingCancellationRequested,
    BookingCancelled,
    BookingCommandRejected,
    BookingConfirmed,
    BookingNoShow,
    BookingRejected,
    BookingRequested,
    CheckInReported,
    ConsignmentCheckedIn,
)
from contracts.envelope import CloudEvent
from contracts.topics import BOOKING_COMMANDS, BOOKING_EVENTS
from services.booking import store
from services.booking.catalogue import load_catalogue
from services.booking.handlers import COMMAND_TYPES, BookingHandlers
from services.runtime.service import Service

log = logging.getLogger(__name__)

BookingEvent = CloudEvent[
    BookingConfirmed
    | BookingRejected
    | BookingCancelled
    | ConsignmentCheckedIn
    | BookingNoShow
    | BookingCommandRejected
]
BookingCommand = CloudEvent[BookingRequested | BookingCancellationRequested | CheckInReported]


class BookingService(Service):
    name = "booking"
    outbox = store.outbox
    inbox = store.inbox

    def setup(self) -> None:
        self.handlers = BookingHandlers(
            max_clock_skew=timedelta(seconds=self.settings.max_clock_skew_seconds),
            no_show_grace=timedelta(minutes=self.settings.no_show_grace_minutes),
            events_topic=self.settings.topic(BOOKING_EVENTS.name),
        )
        self.commands = self.consume(
            topic=BOOKING_COMMANDS.name,
            accepts=BookingCommand,
            allowed_types=COMMAND_TYPES,
            handler=self.handlers.handle,
            description="Carriers' booking commands, keyed by hub id.",
        )
        self.publishes(
            topic=BOOKING_EVENTS.name,
            schema=BookingEvent,
            description="Outcomes of carriers' commands and no-shows, keyed by hub id.",
        )

    async def on_start(self) -> None:
        await self.load_hubs(self.settings.hubs_file)
        if self.settings.sweep_interval_seconds > 0:
            self.every(self.settings.sweep_interval_seconds, self.sweep_no_shows, "no-show-sweep")

    def http_routers(self) -> list:
        from services.booking import api

        publish = api.kafka_publisher(self.broker, self.settings.topic(BOOKING_COMMANDS.name))
        return [
            lambda principal: api.router(
                sessions=self.sessions, publish=publish, principal=principal
            )
        ]

    async def load_hubs(self, path: Path | None) -> int:
        hubs = load_catalogue(path)
        async with self.sessions() as session, session.begin():
            for hub in hubs:
                await store.upsert_hub(session, hub)
        log.info("loaded %d hubs from %s", len(hubs), path or "the sample catalogue")
        return len(hubs)

    async def sweep_no_shows(self, now: datetime | None = None) -> int:
        """The wall-clock nudge for quiet hubs: same code path as the event-time sweep."""
        now = now or datetime.now(UTC)
        marked = 0
        async with self.sessions() as session, session.begin():
            for hub_id in await store.load_hubs(session):
                marked += await self.handlers.sweep_no_shows(session, hub_id, now=now)
        if marked and self.relay is not None:
            self.relay.notify()
        return marked
