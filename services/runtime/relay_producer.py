"""The outbox relay's producer: librdkafka (the confluent-kafka wheel we ship anyway for
the embedded broker and the ACL admin), idempotent, acks=all.

aiokafka encodes every record batch in Python; per published event that cost about as
much CPU as deciding the booking that caused it (docs/booking-throughput.md). librdkafka
does the same in C on its own threads. A poll thread serves librdkafka's delivery reports
and resolves the asyncio future of each record on the event loop, so the relay keeps its
contract: ``send()`` returns a future that completes when the broker acked the record (or
fails with the error), in order per partition. The reports of one poll reach the loop
together: one wake-up of the loop for a batch of acks instead of one per record.

The relay publishes a pass with :meth:`RelayProducer.send_batch`: one future for the
whole pass, settled once (one ``call_soon_threadsafe``) when the last record's report
came; the reports are counted down on the report thread. Per record the loop then does
no asyncio work at all (no future, no settling).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from services.runtime.kafka_security import librdkafka_security_config
from services.runtime.outbox import OutboxRecord
from services.runtime.settings import Settings

CLOUDEVENTS = "application/cloudevents+json"  # every outbox record's content-type


class RelayProducer:
    def __init__(self, bootstrap: list[str], settings: Settings, *, client_id: str) -> None:
        self._config: dict[str, Any] = {
            "bootstrap.servers": ",".join(bootstrap),
            "client.id": f"{settings.kafka_client_id}-{client_id}-relay",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,  # a batch's events leave together
            # the Java client's partitioner (and aiokafka's): a key lands on the partition
            # every other producer and reader of ours computes. librdkafka's default
            # (consistent_random, CRC32) would put a hub's events elsewhere.
            "partitioner": "murmur2_random",
            "request.timeout.ms": 30_000,
            "message.timeout.ms": 120_000,  # then the row stays pending: the relay retries it
            "log_level": 3,
        } | librdkafka_security_config(settings)
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # delivery reports not yet handed to the loop (appended by whichever thread polls:
        # the report thread, or flush() on stop); deque: safe across threads
        self._reports: deque[tuple[asyncio.Future[None], KafkaError | None]] = deque()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = Producer(self._config)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._serve_reports, name="outbox-relay-producer", daemon=True
        )
        self._thread.start()

    def _serve_reports(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stopping.is_set():
            producer.poll(0.05)
            self._hand_over()
        self._hand_over()

    def _hand_over(self) -> None:
        """The reports gathered so far to the event loop, in one call."""
        reports = []
        while self._reports:
            reports.append(self._reports.popleft())
        if reports and self._loop is not None:
            self._loop.call_soon_threadsafe(_settle_all, reports)

    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, str | bytes | None]]
    ) -> asyncio.Future[None]:
        """Queue one record; the future resolves when the broker acked it."""
        assert self._producer is not None and self._loop is not None, "start() first"
        future: asyncio.Future[None] = self._loop.create_future()
        reports = self._reports

        def delivered(error: KafkaError | None, _message: Any) -> None:
            # the polling thread: the loop settles it with the poll's other reports
            reports.append((future, error))

        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=delivered
                )
                return future
            except BufferError:  # the local queue is full: let deliveries drain it
                await asyncio.sleep(0.01)

    async def send_batch(
        self, records: Sequence[tuple[str, bytes, bytes, Any]]
    ) -> asyncio.Future[list[BaseException | None]]:
        """Queue ``(topic, key, value, headers)`` records; the future resolves once every
        record has its delivery report: per record, in order, None (acked) or its error.

        A record librdkafka refuses at once (too large, say) gets that error as its
        outcome, and the later records of its key in the batch are not queued (their
        outcome is the same error): queuing them would put them ahead of it in Kafka."""
        assert self._producer is not None and self._loop is not None, "start() first"
        batch = _Batch(self._loop, len(records))
        produce = self._producer.produce
        refused: dict[tuple[str, bytes], BaseException] = {}
        for index, (topic, key, value, headers) in enumerate(records):
            if refused and (error := refused.get((topic, key))) is not None:
                batch.refuse(index, error)
                continue
            while True:
                try:
                    produce(
                        topic,
                        value=value,
                        key=key,
                        headers=headers,
                        on_delivery=partial(batch.delivered, index),
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    await asyncio.sleep(0.01)
                except KafkaException as exc:
                    # without its traceback: the frame it holds would keep the producer
                    # (and its threads) alive as long as the row's outcome is kept
                    error = exc.with_traceback(None)
                    refused[(topic, key)] = error
                    batch.refuse(index, error)
                    break
        return batch.future

    async def publish_outbox(self, records: list[OutboxRecord]) -> list[BaseException | None]:
        """The relay's :data:`PublishBatch`: a pass's records as one batch, each
        labelled as a CloudEvent; returns once every record has its outcome."""
        acks = await self.send_batch(
            [
                (topic, key, payload, {"content-type": CLOUDEVENTS, **headers})
                for topic, key, payload, headers in records
            ]
        )
        return await acks

    async def stop(self, timeout: float = 10.0) -> None:
        if self._producer is None:
            return
        producer = self._producer
        await asyncio.to_thread(producer.flush, timeout)
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        self._hand_over()  # reports flush() served after the thread's last hand-over
        self._producer = None


def _settle_all(reports: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for future, error in reports:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(KafkaException(error))


class _Batch:
    """The outcomes of one :meth:`RelayProducer.send_batch`, counted down by the thread
    serving delivery reports and handed to the loop in one call when complete."""

    __slots__ = ("_lock", "_loop", "_remaining", "future", "outcomes")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self._loop = loop
        self.future: asyncio.Future[list[BaseException | None]] = loop.create_future()
        self.outcomes: list[BaseException | KafkaError | None] = [None] * size
        self._remaining = size
        # reports come from the report thread, and from flush() on stop, maybe at once
        self._lock = threading.Lock()
        if size == 0:
            self.future.set_result([])

    def delivered(self, index: int, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self.outcomes[index] = error
        self._count_down()

    def refuse(self, index: int, error: BaseException) -> None:
        """The event loop's thread: a record not queued at all."""
        self.outcomes[index] = error
        self._count_down()

    def _count_down(self) -> None:
        with self._lock:
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            try:
                self._loop.call_soon_threadsafe(self._settle)
            except RuntimeError:  # the loop is closed: nobody waits for this batch
                pass

    def _settle(self) -> None:
        if not self.future.done():
            self.future.set_result(
                [
                    KafkaException(outcome) if isinstance(outcome, KafkaError) else outcome
                    for outcome in self.outcomes
                ]
            )
