"""How every microhub consumer reads a topic: decode, dedupe, apply, commit.

For each record:

1. Decode the CloudEvent and validate its payload against the contract. A poison message
   (too large, not JSON, not a CloudEvent, unknown type, invalid payload) goes to
   ``<topic>.dlq`` with headers saying why and where from; the consumer moves on.
2. In one database transaction: record ``(consumer, source, id)`` in the inbox (a
   redelivered event stops here) and apply the handler, which writes state and outbox.
3. The events the transaction wrote to the outbox are published (``after_commit``; with
   ``outbox_publish_before_ack``, awaited, so a committed offset never runs ahead of the
   events its record caused).
4. Only then is the Kafka offset committed (services/runtime/rdkafka_consumer.py: after the
   batch's publication; a batch that raises is read again from its first record). The
   live consumer awaits that publication while it decides its next batch
   (``defer_publication``): the broker's acks no longer hold up the next decision.

Transient failures (database unreachable, locked) are retried in place with backoff and
never commit the offset. A handler that keeps failing on one record for another reason
(a bug, a constraint it trips every time) dead-letters that record after a few tries
rather than blocking its partition for ever; a command is answered besides
(services/runtime/answers.py: every command gets exactly one answer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker
from sqlalchemy import Table
from sqlalchemy import exc as sa_exc

from contracts.envelope import CloudEvent, ContractError, decode
from services.runtime import inbox as inbox_module
from services.runtime import tracing
from services.runtime.answers import Answering, CommandAnswers
from services.runtime.dead_letters import DeadLetters
from services.runtime.rdkafka_consumer import RdkafkaSubscription
from services.runtime.uow import UnitOfWork, UnitsOfWork

log = logging.getLogger(__name__)

MAX_HANDLER_ATTEMPTS = 3


@dataclass(frozen=True)
class Delivery:
    """One decoded record and where it came from."""

    event: CloudEvent[Any]
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: str | None
    # whose clock ``timestamp_ms`` is: 0 CreateTime (the producer's), 1 LogAppendTime (the
    # broker's, on a topic configured so: the gateway's receipt time)
    timestamp_type: int = 0


# what a consumer calls for each fresh delivery, inside the batch's unit of work
Handler = Callable[[UnitOfWork, Delivery], Awaitable[None]]
# or for all of a batch's fresh deliveries at once (a service that decides them together)
BatchHandler = Callable[[UnitOfWork, list[Delivery]], Awaitable[None]]


# PostgreSQL: deadlock detected, serialization failure — the transaction is to be redone
RETRY_SQLSTATES = {"40P01", "40001"}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, inbox_module.InboxRace):  # redone: it finds them recorded
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        original = exc.orig
        code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
        if code in RETRY_SQLSTATES:
            return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    return isinstance(exc, OSError | ConnectionError | TimeoutError) and not isinstance(
        exc, FileNotFoundError
    )


@dataclass
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    retries: int = 0


async def _all_of(started: list[asyncio.Future[None]]) -> None:
    await asyncio.gather(*started)


class RecordApplier:
    """Applies records of one topic for one consumer: decode (poison is dead-lettered),
    claim in the inbox, run the handler, all of a batch in one unit of work; retries and
    dead-letters a record that keeps failing. The live consumer and a replay share it."""

    def __init__(
        self,
        *,
        name: str,
        allowed_types: frozenset[str] | set[str],
        units: UnitsOfWork,
        inbox: Table,
        handler: Handler,
        dead_letters: DeadLetters,
        after_commit: Callable[[], Awaitable[None] | None] = lambda: None,
        batch_handler: BatchHandler | None = None,
        answers: Answering | None = None,
        identify: Callable[[Delivery], Delivery] | None = None,
        resent: Callable[[UnitOfWork, Delivery], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.resent = resent  # a command sent again, on a consumer without answers
        # names a delivery before the inbox sees it (the gateway: a carrier's event ids
        # are unique only among its own)
        self.identify = identify
        self.allowed_types = set(allowed_types)
        self.units = units
        self.inbox = inbox
        self.answers = (
            CommandAnswers(answers, consumer=name, inbox=inbox) if answers is not None else None
        )
        self.handler = self.answers.handler(handler) if self.answers is not None else handler
        self.batch_handler = (
            self.answers.batch_handler(batch_handler)
            if self.answers is not None and batch_handler is not None
            else batch_handler
        )
        self.after_commit = after_commit
        self.dead_letters = dead_letters
        self.stats = ConsumerStats()
        self.stopping = False
        # Set by a caller that commits offsets itself once the publication is done (the
        # live consumer): each unit of work's publication is then started and kept here
        # (``take_publications``), not awaited before the next batch is decided.
        self.defer_publication = False
        self._publications: list[asyncio.Future[None]] = []

    def take_publications(self) -> Awaitable[None] | None:
        """What the batches applied since the last call published (started, maybe not
        acked yet): done when all of it is; None when nothing was published."""
        started, self._publications = self._publications, []
        if not started:
            return None
        return started[0] if len(started) == 1 else _all_of(started)

    async def _decode(self, record: Any) -> Delivery | None:
        """The record as a delivery, or None after dead-lettering it."""
        try:
            event = decode(record.value or b"", allowed=self.allowed_types)
        except ContractError as exc:
            await self.dead_letters.send(record, reason=exc.reason, error=exc)
            return None
        except Exception as exc:  # a record no contract names: never block the partition
            await self.dead_letters.send(record, reason="undecodable", error=exc)
            return None
        return Delivery(
            event=event,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key.decode(errors="replace") if record.key else None,
            timestamp_type=getattr(record, "timestamp_type", 0) or 0,
        )

    async def process_batch(self, records: list[Any]) -> None:
        """Records fetched together, applied in one transaction (one commit, one outbox
        publication, one offset commit for all). If any of them fails, nothing of the
        batch is kept and each record goes through :meth:`process` on its own, with its
        retries and dead-lettering."""
        if len(records) == 1:
            await self.process(records[0])
            return
        pairs = [(record, await self._decode(record)) for record in records]
        valid = [(record, d) for record, d in pairs if d is not None]
        if not valid:
            return
        try:
            await self.apply([d for _, d in valid])
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.stopping:
                raise
            log.info("%s: batch of %d failed (%r): one by one", self.name, len(valid), exc)
        for record, delivery in valid:
            await self._process_delivery(record, delivery)

    async def process(self, record: Any) -> None:
        delivery = await self._decode(record)
        if delivery is not None:
            await self._process_delivery(record, delivery)

    async def _process_delivery(self, record: Any, delivery: Delivery) -> None:
        event = delivery.event
        backoff = 0.05
        failures = 0
        while True:
            try:
                await self.apply([delivery])
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.retries += 1
                if self.stopping:
                    raise  # not committed: the next owner of the partition redoes it
                if is_transient(exc):
                    log.warning(
                        "%s: transient failure, retrying in %.2fs: %s", self.name, backoff, exc
                    )
                else:
                    failures += 1
                    if failures >= MAX_HANDLER_ATTEMPTS:
                        log.exception(
                            "%s: giving up on %s after %d attempts", self.name, event.id, failures
                        )
                        await self.dead_letters.send(record, reason="handler_failed", error=exc)
                        if self.answers is not None:
                            await self.answers.after_failure(
                                self.units, delivery, exc, self.after_commit, is_transient
                            )
                        return
                    log.warning("%s: handler failed (attempt %d): %r", self.name, failures, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def apply(self, deliveries: list[Delivery]) -> None:
        """Deliveries in one unit of work: each claimed in the inbox (a duplicate stops
        there; a command sent again is answered again) and handed to the handler; then
        what they caused is published."""
        if self.identify is not None:
            deliveries = [self.identify(d) for d in deliveries]
        async with tracing.consuming(self.name, deliveries), self.units(notify=False) as uow:
            if self.answers is None:
                new_ids = await inbox_module.claim_all(
                    uow.session, self.inbox, consumer=self.name, deliveries=deliveries
                )
            else:  # commands: their rows are written after the decisions, with the answers
                new_ids = await inbox_module.unrecorded(
                    uow.session, self.inbox, consumer=self.name, deliveries=deliveries
                )
            fresh = []
            for delivery in deliveries:
                if (delivery.event.source, delivery.event.id) in new_ids:
                    # a second copy in the batch is not fresh: it is seen below
                    new_ids.discard((delivery.event.source, delivery.event.id))
                    fresh.append(delivery)
            if self.batch_handler is not None:
                await self.batch_handler(uow, fresh)
            else:
                for delivery in fresh:
                    await self.handler(uow, delivery)
            if self.answers is not None:
                await self.answers.record(uow, fresh)
            if self.answers is not None or self.resent is not None:
                # after the fresh ones are answered: a copy sent again within the batch
                # gets the answer its first copy just got
                await self._sent_again(uow, deliveries, fresh)
        self.stats.processed += len(fresh)
        self.stats.duplicates += len(deliveries) - len(fresh)
        # Also after redelivered records only: what they caused may still sit in the
        # outbox (a crash after the commit, before the publish), and their offsets must
        # not be committed ahead of it.
        published = self.after_commit()
        if published is None:
            return
        if self.defer_publication:
            # started now (the relay's pass begins at once), awaited before the offsets
            # of these records are committed
            self._publications.append(asyncio.ensure_future(published))
        else:
            await published

    async def _sent_again(
        self, uow: UnitOfWork, deliveries: list[Delivery], fresh: list[Delivery]
    ) -> None:
        """Each delivery that was not fresh and was sent again (not a redelivery of its
        own record): a command answered again, or handed to ``resent``."""
        fresh_ids = {id(d) for d in fresh}
        for delivery in deliveries:
            if id(delivery) in fresh_ids:
                continue
            earlier = await inbox_module.sent_again(
                uow.session, self.inbox, consumer=self.name, delivery=delivery
            )
            if earlier is None:
                continue  # its own record again (a crash before the commit): nothing
            if self.answers is not None:
                await self.answers.again(uow, delivery, earlier.answer)
            elif self.resent is not None:
                await self.resent(uow, delivery)


class EventConsumer(RecordApplier):
    """A :class:`RecordApplier` bound to a topic through a librdkafka group member
    (services/runtime/rdkafka_consumer.py); ``broker`` (FastStream's) sends its dead
    letters."""

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        name: str,
        topic: str,
        config: dict[str, Any],
        allowed_types: frozenset[str] | set[str],
        units: UnitsOfWork,
        inbox: Table,
        handler: Handler,
        after_commit: Callable[[], Awaitable[None] | None] = lambda: None,
        max_batch: int = 100,
        batch_handler: BatchHandler | None = None,
        answers: Answering | None = None,
        identify: Callable[[Delivery], Delivery] | None = None,
        resent: Callable[[UnitOfWork, Delivery], Awaitable[None]] | None = None,
        pattern: bool = False,
    ) -> None:
        """``config``: the librdkafka consumer's (``rdkafka_consumer.consumer_config``);
        ``pattern``: ``topic`` is a regular expression (every carrier's topic)."""
        super().__init__(
            name=name,
            allowed_types=allowed_types,
            units=units,
            inbox=inbox,
            handler=handler,
            dead_letters=DeadLetters(broker, consumer=name),
            after_commit=after_commit,
            batch_handler=batch_handler,
            answers=answers,
            identify=identify,
            resent=resent,
        )
        self.topic = topic
        # what it has fetched already joins a record's transaction, up to ``max_batch``
        self.subscription = RdkafkaSubscription(
            config,
            name=name,
            topic=topic,
            pattern=pattern,
            max_batch=max_batch,
            on_batch=self._decide,
        )
        # the subscription commits a batch's offsets once its publication is done,
        # overlapped with deciding the next batch
        self.defer_publication = True

    async def _decide(self, records: list[Any]) -> Awaitable[None] | None:
        try:
            await self.process_batch(records)
        except BaseException:
            # read again from its first record; what it published runs on by itself
            self.take_publications()
            raise
        return self.take_publications()

    async def start_consuming(self) -> None:
        """Join the group and consume."""
        await self.subscription.start()

    async def stop_consuming(self) -> None:
        """Stop fetching; the batch in flight finishes; commit; leave the group."""
        self.stopping = True
        await self.subscription.stop()

    def assigned_partitions(self) -> list[int]:
        return sorted(tp.partition for tp in self.subscription.assignment())
