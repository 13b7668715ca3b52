"""The outbox relay's producer: librdkafka (the confluent-kafka wheel we ship anyway for
the embedded broker and the ACL admin), idempotent, acks=all.

aiokafka encodes every record batch in Python; per published event that cost about as
much CPU as deciding the booking that caused it (docs/booking-throughput.md). librdkafka
does the same in C on its own threads. A poll thread serves librdkafka's delivery reports
and resolves the asyncio future of each record on the event loop, so the relay keeps its
contract: ``send()`` returns a future that completes when the broker acked the record (or
fails with the error), in order per partition. The reports of one poll reach the loop
together: one wake-up of the loop for a batch of acks instead of one per record.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from services.runtime.kafka_security import librdkafka_security_config
from services.runtime.settings import Settings


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
