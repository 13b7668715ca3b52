"""The reporting service: two consumers (booking events, dispatch events) feeding the
projection, and the monthly report built from it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Union

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select

from contracts.booking.events import (
    BookingCancelled,
    BookingCommandRejected,
    BookingConfirmed,
    BookingNoShow,
    BookingRejected,
    ConsignmentCheckedIn,
)
from contracts.dispatch import RouteCompleted, RoutePlanned, RouteStarted, StopReturned
from contracts.envelope import CloudEvent, ContractError, decode
from contracts.topics import BOOKING_EVENTS, DISPATCH_EVENTS
from services.reporting import hub_energy, publication, store
from services.reporting.factors import FactorCatalogue
from services.reporting.handlers import BOOKING_TYPES, DISPATCH_TYPES, ReportingHandlers
from services.reporting.model import EmissionsReport
from services.reporting.report import build_report
from services.runtime import inbox as inbox_module
from services.runtime.consumer import Delivery, Handler
from services.runtime.kafka import aiokafka_security_kwargs
from services.runtime.service import Service

log = logging.getLogger(__name__)

BookingEvent = CloudEvent[
    Union[  # noqa: UP007 - a runtime type for AsyncAPI, as in services/booking
        BookingConfirmed,
        BookingRejected,
        BookingCancelled,
        ConsignmentCheckedIn,
        BookingNoShow,
        BookingCommandRejected,
    ]
]
DispatchEvent = CloudEvent[Union[RoutePlanned, RouteStarted, RouteCompleted, StopReturned]]  # noqa: UP007

BOOKINGS_CONSUMER = "reporting-bookings"
DISPATCH_CONSUMER = "reporting-dispatch"


@dataclass
class ReplayStats:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped_poison: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)


class ReportingService(Service):
    name = "reporting"
    inbox = store.inbox

    @cached_property
    def catalogue(self) -> FactorCatalogue:
        """The emission factors; also needed by an HTTP-only instance (no consumers)."""
        return FactorCatalogue.load(self.settings.emission_factors_file)

    def setup(self) -> None:
        self.handlers = ReportingHandlers(self.catalogue)
        self.bookings = self.consume(
            topic=BOOKING_EVENTS.name,
            accepts=BookingEvent,
            allowed_types=BOOKING_TYPES,
            handler=self.handlers.on_booking_event,
            consumer=BOOKINGS_CONSUMER,
            description="Confirmed consignments (baseline), cancellations and no-shows.",
        )
        self.dispatch = self.consume(
            topic=DISPATCH_EVENTS.name,
            accepts=DispatchEvent,
            allowed_types=DISPATCH_TYPES,
            handler=self.handlers.on_dispatch_event,
            consumer=DISPATCH_CONSUMER,
            description="Planned and completed last-mile routes (actual flows).",
        )

    def http_routers(self) -> list:
        from services.reporting import api

        return [lambda principal: api.router(self, principal)]

    def _routes(self) -> dict[str, tuple[str, set[str], Handler]]:
        return {
            self.settings.topic(BOOKING_EVENTS.name): (
                BOOKINGS_CONSUMER,
                BOOKING_TYPES,
                self.handlers.on_booking_event,
            ),
            self.settings.topic(DISPATCH_EVENTS.name): (
                DISPATCH_CONSUMER,
                DISPATCH_TYPES,
                self.handlers.on_dispatch_event,
            ),
        }

    async def report(
        self, city_id: str, month: str, *, now: datetime | None = None
    ) -> EmissionsReport:
        """The month's report; a closed month's is published (the same bytes until its
        inputs, factors or methodology change: then a new version)."""
        async with self.sessions() as session:
            return await build_report(session, self.catalogue, city_id, month, now=now)

    async def footprints(self, carrier_id: str, month: str) -> dict[str, Any] | None:
        from services.reporting.footprints import carrier_month

        async with self.sessions() as session:
            return await carrier_month(session, self.catalogue, carrier_id, month)

    async def published(self, city_id: str, month: str, number: int) -> bytes | None:
        async with self.sessions() as session:
            return await publication.stored(session, city_id, month, number)

    async def report_versions(self, city_id: str, month: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            return await publication.versions(session, city_id, month)

    async def put_hub_energy(
        self, hub_id: str, month: str, reading: Any, reported_by: str
    ) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            return await hub_energy.record(session, hub_id, month, reading, reported_by)

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
                    async with self.sessions() as session, session.begin():
                        await session.execute(table.insert(), rows)
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
        """Re-read both topics from the beginning into this service's (fresh) database, with
        the same handlers and inbox discipline as the live consumers, up to the end offsets
        seen when the replay starts. Poison records are skipped (the live consumer already
        dead-lettered them). Returns when caught up."""
        await self.migrate()
        async with self.sessions() as session:
            already = (
                await session.execute(select(func.count()).select_from(self.inbox))
            ).scalar_one()
        if already:
            raise ValueError(
                f"{self.engine.url.render_as_string()} already holds a projection "
                f"({already} events): a rebuild needs a fresh database"
            )
        routes = self._routes()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"{self.settings.kafka_client_id}-reporting-rebuild",
            **aiokafka_security_kwargs(self.settings),
        )
        await consumer.start()
        stats = ReplayStats()
        try:
            partitions = await self._partitions(sorted(routes))
            if not partitions:
                return stats
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            total = sum(ends[tp] - starts[tp] for tp in partitions)
            pending = {tp for tp in partitions if ends[tp] > starts[tp]}
            loop = asyncio.get_running_loop()
            last_progress = loop.time()
            while pending:
                batch = await consumer.getmany(*pending, timeout_ms=500, max_records=2000)
                if batch:
                    last_progress = loop.time()
                elif loop.time() - last_progress > idle_timeout:
                    raise TimeoutError(f"replay stalled with {len(pending)} partitions behind")
                for tp, records in batch.items():
                    name, allowed, handler = routes[tp.topic]
                    for record in records:
                        if record.offset >= ends[tp]:
                            break
                        await self._replay_one(record, name, allowed, handler, stats)
                        stats.per_topic[tp.topic] = stats.per_topic.get(tp.topic, 0) + 1
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                if progress is not None:
                    progress(stats.records, total)
        finally:
            await consumer.stop()
        return stats

    async def _partitions(self, topics: list[str]) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, **aiokafka_security_kwargs(self.settings)
        )
        await admin.start()
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        return sorted(
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if not t.get("error_code")
            for p in t["partitions"]
        )

    async def _replay_one(
        self, record: Any, consumer: str, allowed: set[str], handler: Handler, stats: ReplayStats
    ) -> None:
        stats.records += 1
        try:
            event = decode(record.value or b"", allowed=allowed)
        except ContractError:
            stats.skipped_poison += 1
            return
        delivery = Delivery(
            event=event,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key.decode(errors="replace") if record.key else None,
        )
        async with self.sessions() as session, session.begin():
            fresh = await inbox_module.claim(
                session,
                self.inbox,
                consumer=consumer,
                event_id=event.id,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            if not fresh:
                stats.duplicates += 1
                return
            await handler(session, delivery)
        stats.applied += 1
