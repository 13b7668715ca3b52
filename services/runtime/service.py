"""What every microhub service process has: its database, broker, outbox relay and
consumers (built from the service's declaration, ``spec``), units of work, and an
orderly start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from services.runtime import migrations, privacy
from services.runtime.consumer import Delivery, EventConsumer
from services.runtime.db import make_engine, make_sessionmaker, writing
from services.runtime.kafka import make_broker
from services.runtime.kafka_security import librdkafka_security_config
from services.runtime.outbox import OutboxRecord
from services.runtime.outbox_relay import OutboxRelay
from services.runtime.outbox_tail import published_outbox_ids
from services.runtime.rdkafka_consumer import consumer_config
from services.runtime.relay_producer import RelayProducer
from services.runtime.settings import Settings
from services.runtime.uow import UnitOfWork, UnitsOfWork
from services.runtime.wiring import Consumes, ServiceSpec

log = logging.getLogger(__name__)


class Service:
    """Base of the booking, dispatch and reporting services.

    Subclasses set ``spec`` (what they consume and publish), ``outbox`` and ``inbox``
    (their tables), and build the object whose methods ``spec``'s handlers are in
    :meth:`make_handlers`. The consumers are derived from ``spec``.
    """

    spec: ClassVar[ServiceSpec]
    outbox: ClassVar[Table | None] = None
    inbox: ClassVar[Table]

    def __init__(
        self,
        settings: Settings,
        bootstrap: list[str],
        *,
        database_url: str | None = None,
        consuming: bool = True,
    ) -> None:
        """``consuming=False`` gives the HTTP API process of a multi-process deployment:
        the service's database and a producer, but no consumers, relay or timers."""
        self.name = self.spec.name
        self.settings = settings
        self.consuming = consuming
        self.bootstrap = bootstrap
        self.database_url = database_url or settings.database_url(self.name)
        self.engine = make_engine(
            self.database_url, sqlite_inline=settings.sqlite_inline_statements
        )
        self.sessions = make_sessionmaker(self.engine)
        self.broker = make_broker(bootstrap, settings, client_id=self.name)
        self.relay: OutboxRelay | None = None
        self.producer: RelayProducer | None = None  # the relay's
        if self.outbox is not None and consuming:
            self.relay = OutboxRelay(
                service=self.name,
                engine=self.engine,
                outbox=self.outbox,
                publish_batch=self._publish_batch,
                batch_size=settings.outbox_batch_size,
                poll_interval=settings.outbox_poll_interval_seconds,
                safety_poll_interval=settings.outbox_safety_poll_seconds,
                find_published=functools.partial(
                    published_outbox_ids, bootstrap, settings, self.name
                ),
            )
        self.units = UnitsOfWork(
            self.sessions,
            source=self.spec.source,
            outbox=self.outbox,
            topic=settings.topic,
            emitted=self._wake_relay,
            floor=self.relay,
        )
        self.consumers: list[EventConsumer] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = False
        self.prepare()
        if consuming:
            self.handlers = self.make_handlers()
            for consumes in self.spec.consumes:
                self._consume(consumes)

    # --- for subclasses -------------------------------------------------------------

    def prepare(self) -> None:
        """What both kinds of process need, the consuming one and the HTTP API (called
        from __init__, before ``setup``)."""

    def make_handlers(self) -> Any:
        """The object whose methods ``spec``'s handlers are (called once, in a consuming
        process, before the broker starts)."""
        return None

    async def on_start(self) -> None:
        """Runs after migrations, before consuming (load reference data, timers, …)."""

    def http_routers(self) -> list[Any]:
        """Factories ``principal_dependency -> APIRouter`` for the HTTP app."""
        return []

    async def purge_tables(
        self, session: AsyncSession, before: datetime, now: datetime
    ) -> privacy.Counts:
        """Anonymise the service's own rows whose relevant time is before ``before`` (the
        retention's cutoff), in the purge's transaction; returns rows changed per table
        and column (docs/privacy.md). The outbox and the inbox's answers are done here."""
        return {}

    # --- personal data ----------------------------------------------------------------

    def schedule_purge(self) -> None:
        """The purge on the wall clock, every ``retention_interval_seconds`` (0: never),
        in every consuming process (each run is one idempotent transaction)."""
        if self.settings.retention_interval_seconds > 0:
            self.every(
                self.settings.retention_interval_seconds,
                self.purge_personal_data,
                "personal-data-purge",
            )

    async def purge_personal_data(
        self, now: datetime | None = None, *, dry_run: bool = False
    ) -> privacy.Counts:
        """One purge (services/runtime/privacy.py), in one transaction: the service's
        tables, the outbox rows sent and the commands' answers kept before the cutoff.
        ``dry_run``: the same, rolled back; the counts say what it would change."""
        now = now or datetime.now(UTC)
        before = privacy.cutoff(now, self.settings.personal_data_retention_days)
        async with writing(self.engine), self.sessions() as session:
            counts = dict(await self.purge_tables(session, before, now))
            if self.outbox is not None:
                counts["outbox (sent rows deleted)"] = await privacy.purge_outbox(
                    session, self.outbox, before
                )
            if any(c.answers is not None for c in self.spec.consumes):
                counts["inbox.answer"] = await privacy.purge_answers(session, self.inbox, before)
            if dry_run:
                await session.rollback()
            else:
                await session.commit()
        changed = sum(counts.values())
        if changed and not dry_run:
            log.info("%s: personal data purged (before %s): %s", self.name, before, counts)
        return counts

    def health(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "consumers": {
                c.name: vars(c.stats)
                | {"dead_lettered": c.dead_letters.count}
                | (
                    {"answered_again": c.answers.resent, "answered_failed": c.answers.failed}
                    if c.answers is not None
                    else {}
                )
                for c in self.consumers
            },
            "outbox_published": self.relay.published if self.relay else None,
        }

    async def readiness(self, timeout: float = 2.0) -> dict[str, Any]:
        """What ``/readyz`` reports: the database answers, a Kafka broker answers, and every
        consumer has partitions assigned (a replica beyond the partition count has none,
        which is why the autoscaler's ceiling is the partition count)."""
        checks: dict[str, Any] = {"started": self.started}
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = True
            # an HTTP-only process reads a database that another process migrates
            checks["migrated"] = await migrations.at_head(
                self.engine, self.name, self.spec.migrations
            )
        except Exception as exc:
            checks["database"] = False
            checks["database_error"] = f"{type(exc).__name__}: {exc}"[:300]
        checks["kafka"] = bool(self.started) and await self.broker.ping(timeout)
        assigned, partitions = {}, {}
        for consumer in self.consumers:
            mine = consumer.assigned_partitions()
            assigned[consumer.name] = len(mine)
            # which ones: with several replicas, this one decides the keys hashed there
            partitions[consumer.name] = mine
        checks["assigned_partitions"] = assigned
        checks["partitions"] = partitions
        checks["ready"] = bool(
            self.started
            and checks["database"]
            and checks.get("migrated")
            and checks["kafka"]
            and all(n > 0 for n in assigned.values())
        )
        return checks

    def unit_of_work(
        self, *, notify: bool = True
    ) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        """A transaction of this service (see services/runtime/uow.py): what timers,
        admin routes and start-up work go through, like the consumers."""
        return self.units(notify=notify)

    def consumer(self, name: str) -> EventConsumer:
        for consumer in self.consumers:
            if consumer.name == name:
                return consumer
        raise KeyError(f"{self.name} has no consumer {name!r}")

    async def handle(
        self, event: CloudEvent[Any], *, offset: int = 0, timestamp_ms: int | None = None
    ) -> None:
        """Apply one event exactly as the consumer of its topic would (inbox, handler, one
        unit of work, the outbox published), without Kafka: for tests and tools."""
        topic = self.settings.topic(event.data.topic)
        consumer = next((c for c in self.consumers if c.topic == topic), None)
        if consumer is None:
            raise ValueError(f"{self.name} consumes no {event.data.topic} here")
        delivery = Delivery(event, topic, 0, offset, timestamp_ms, event.subject)
        await consumer.apply([delivery])

    def _consume(self, consumes: Consumes) -> EventConsumer:
        # a carrier topic: every carrier's, by pattern (a new carrier's topic is found at
        # the consumer's next metadata refresh)
        template = consumes.topic.is_template
        event_consumer = EventConsumer(
            self.broker,
            name=consumes.consumer,
            topic=(
                consumes.topic.pattern(self.settings.kafka_topic_prefix)
                if template
                else self.settings.topic(consumes.topic.name)
            ),
            pattern=template,
            identify=consumes.bind_identify(self.handlers),
            resent=consumes.bind_resent(self.handlers),
            config=consumer_config(
                bootstrap=self.bootstrap,
                client_id=f"{self.settings.kafka_client_id}-{self.name}",
                group_id=self.settings.group(consumes.consumer),
                fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
                fetch_min_bytes=self.settings.kafka_fetch_min_bytes,
                max_partition_fetch_bytes=self.settings.kafka_max_partition_fetch_bytes,
                fetch_max_bytes=self.settings.kafka_fetch_max_bytes,
                security=librdkafka_security_config(self.settings),
            ),
            allowed_types=consumes.accepts,
            units=self.units,
            inbox=self.inbox,
            handler=consumes.bind(self.handlers),
            batch_handler=consumes.bind_batch(self.handlers),
            after_commit=self._after_commit,
            max_batch=self.settings.kafka_consumer_max_batch,
            answers=consumes.answers,
        )
        self.consumers.append(event_consumer)
        return event_consumer

    def _wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()  # the unit of work lowered its floor

    def _after_commit(self) -> Awaitable[None] | None:
        """What a consumer does after its transaction: publish the outbox before it acks
        (see ``outbox_publish_before_ack_seconds``), or just wake the relay."""
        if self.relay is None:
            return None
        wait = self.settings.outbox_publish_before_ack_seconds
        if wait > 0:
            return self.relay.publish_now(wait)
        self.relay.wake()  # the unit of work lowered its floor
        return None

    def every(self, seconds: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
        """Run ``job`` periodically while the service runs (failures are logged)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: periodic job %s failed", self.name, name)

        self._tasks.append(asyncio.create_task(loop(), name=f"{self.name}-{name}"))

    # --- lifecycle --------------------------------------------------------------------

    async def _publish_batch(self, records: list[OutboxRecord]) -> list[BaseException | None]:
        """The relay's send: a librdkafka producer of its own (relay_producer.py), a pass
        as one batch with one future. FastStream's publish path and aiokafka's record
        encoding cost as much CPU per event as deciding it; the relay needs none of it."""
        assert self.producer is not None, "the relay publishes only in a started service"
        return await self.producer.publish_outbox(records)

    async def migrate(self) -> None:
        await migrations.upgrade(self.engine, self.name, self.spec.migrations)

    async def start(self) -> None:
        if self.consuming:
            await self.migrate()
            await self.on_start()
            self.schedule_purge()
        await self.broker.start()  # its producer sends the dead letters
        for consumer in self.consumers:
            await consumer.start_consuming()
        if self.relay is not None:
            self.producer = RelayProducer(self.bootstrap, self.settings, client_id=self.name)
            await self.producer.start()
            self.relay.start()
        self.started = True
        log.info("%s service started (database %s)", self.name, self.engine.url.render_as_string())

    def stop_fetching(self) -> None:
        """The first step of a graceful stop, taken as soon as the stop is asked for (before
        the HTTP servers are waited for): no consumer starts another batch, and one whose
        fetch is under way drops what it brings, uncommitted (all at once: none retries a
        batch meanwhile)."""
        for consumer in self.consumers:
            consumer.stopping = consumer.subscription.stopping = True

    async def stop(self) -> None:
        """Graceful: stop consuming, let the record in flight finish, flush the outbox,
        close the producer."""
        self.stop_fetching()
        for consumer in self.consumers:
            await consumer.stop_consuming()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.relay is not None:
            await self.relay.stop()
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        await self.broker.stop()
        await self.engine.dispose()
        self.started = False

    @property
    def dead_lettered(self) -> int:
        return sum(c.dead_letters.count for c in self.consumers)
