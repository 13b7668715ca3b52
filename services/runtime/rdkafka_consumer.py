"""A consumer group member on librdkafka (the confluent-kafka wheel we ship for the embedded
broker and the relay's producer), for the services' consumers.

Why not aiokafka's consumer (through FastStream), which the services used before: aiokafka
fetches a partition again only once the records it holds of it are consumed, with one
fetch in flight per broker. A command that reaches the broker while a batch is decided
waits for the next batch's fetch and then for the batch after it: at 200 commands/s a
record was 60 to 90 ms old when its batch started (docs/booking-throughput.md). librdkafka
keeps fetching on its own threads while the loop decides (up to ``queued.min.messages``
per partition), decodes the record batches in C, and heartbeats without the event loop.

The loop: wait for the first record in a worker thread (``poll``), take what else is queued
without waiting (``consume(n, 0)``: ``consume`` alone waits its whole timeout for ``n``
records), hand the batch to the consumer (decode, inbox, handler; the outbox's
publication started), then commit the batch's offsets once that publication is acked:
after the next batch is decided, so that the broker's acks overlap the next decision
rather than come before it.
The commit is asynchronous and never runs ahead of the events its records caused; a commit
that is lost (a crash, a rebalance) makes the next owner redo records the inbox knows.
A partition taken away in a rebalance gets its offsets committed synchronously first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

log = logging.getLogger(__name__)

# how long the fetching thread waits for a first record before it looks at ``stopping``
POLL_SECONDS = 0.1


@dataclass(slots=True)
class FetchedRecord:
    """A record as the consumers and the dead letters read it (aiokafka's names)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    # 0 CreateTime (the producer's clock), 1 LogAppendTime (the broker's)
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    # no headers: nothing the services decide reads them, and a dead letter carries
    # headers of its own (dead_letters.py); copying them cost a list per record


def _record(message: Message) -> FetchedRecord:
    kind, timestamp = message.timestamp()
    return FetchedRecord(
        topic=message.topic(),  # type: ignore[arg-type]
        partition=message.partition(),  # type: ignore[arg-type]
        offset=message.offset(),  # type: ignore[arg-type]
        timestamp=timestamp if kind else None,
        timestamp_type=1 if kind == 2 else 0,  # librdkafka: 1 create time, 2 log append
        key=message.key(),
        value=message.value(),
    )


def _positions(offsets: dict[tuple[str, int], int]) -> list[TopicPartition]:
    """Next offsets per (topic, partition), as librdkafka's commit takes them."""
    return [
        TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()
    ]


# how soon a pattern subscription reads a topic created after it joined (one metadata
# request per interval and member: cheap)
PATTERN_REFRESH_MS = 10_000


def consumer_config(
    *,
    bootstrap: list[str],
    client_id: str,
    group_id: str,
    fetch_max_wait_ms: int,
    max_partition_fetch_bytes: int,
    fetch_max_bytes: int,
    security: dict[str, Any],
    fetch_min_bytes: int = 1,
) -> dict[str, Any]:
    return {
        "bootstrap.servers": ",".join(bootstrap),
        "client.id": client_id,
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,  # committed after the batch's outbox is published
        # aiokafka's (and the Java client's) defaults, so a member that dies is replaced
        # as fast as before (librdkafka's own session timeout is 45 s)
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 3_000,
        "partition.assignment.strategy": "roundrobin",
        "fetch.wait.max.ms": fetch_max_wait_ms,
        "fetch.min.bytes": fetch_min_bytes,
        "max.partition.fetch.bytes": max_partition_fetch_bytes,
        "fetch.max.bytes": fetch_max_bytes,
        "receive.message.max.bytes": fetch_max_bytes + 64 * 1024,
        # what it prefetches per partition is bounded by bytes as well as records
        "queued.max.messages.kbytes": 16 * 1024,
        # the outbox relay's producer is idempotent, not transactional: nothing to hide
        "isolation.level": "read_uncommitted",
        "log_level": 3,
    } | security


class RdkafkaSubscription:
    """One consumer group member reading ``topic`` (a regular expression if ``pattern``)
    and handing each fetched batch to ``on_batch``."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        name: str,
        topic: str,
        pattern: bool,
        max_batch: int,
        on_batch: Callable[[list[FetchedRecord]], Awaitable[Awaitable[None] | None]],
    ) -> None:
        """``on_batch`` decides a batch and returns what must be done (its publication)
        before the batch's offsets are committed, or None."""
        self.name = name
        self.config = config
        # librdkafka subscribes by regular expression when the name starts with "^"
        self.subscription = ("^" + topic.removeprefix("^")) if pattern else topic
        self.max_batch = max_batch
        self.on_batch = on_batch
        self.stopping = False
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        # one thread per member: librdkafka's calls on it never run concurrently
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._assigned: list[TopicPartition] = []
        self._done: dict[tuple[str, int], int] = {}  # next offset to commit, per partition
        # The batch decided last, whose publication may not be acked yet: its offsets are
        # committed once it is, after the next batch is decided (or when nothing more
        # came). Deciding does not wait for the broker's acks, and offsets are committed
        # in order and never ahead of the events their records caused.
        self._publishing: tuple[list[FetchedRecord], Awaitable[None]] | None = None

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.stopping = False
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"consume-{self.name}"
        )
        config = self.config | {"error_cb": self._on_error}
        if self.subscription.startswith("^"):
            # a pattern (every carrier's topic) matches topics created later only when
            # the metadata is refreshed: every 5 minutes by default, so a carrier an
            # admin just applied would wait that long for its first command to be read
            config["topic.metadata.refresh.interval.ms"] = PATTERN_REFRESH_MS
        self._consumer = Consumer(config)
        self._consumer.subscribe(
            [self.subscription], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self._task = asyncio.create_task(self._run(), name=f"consume-{self.name}")

    async def stop(self, timeout: float = 15.0) -> None:
        """Let the batch in flight finish (up to ``timeout``), commit, leave the group."""
        self.stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await self._in_thread(self._close, consumer)
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None
        self._assigned = []

    def assignment(self) -> list[TopicPartition]:
        return list(self._assigned)

    def lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, records not read yet) per assigned partition whose high
        watermark (from the last fetch response) and position are known: no round trip,
        so a metrics scrape can ask while a batch is decided."""
        consumer = self._consumer
        if consumer is None:
            return []
        lags = []
        for tp in self.assignment():
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            [position] = consumer.position([TopicPartition(tp.topic, tp.partition)])
            if high >= 0 and position.offset >= 0:
                lags.append((tp.topic, tp.partition, max(0, high - position.offset)))
        return lags

    # --- the loop ------------------------------------------------------------------

    async def _run(self) -> None:
        self._publishing = None
        try:
            await self._consume()
            await self._settle()
        except asyncio.CancelledError:
            self._publishing = None  # not committed: the next owner redoes it
            raise

    async def _settle(self) -> None:
        """Commit the last batch's offsets once its publication is done: of the partitions
        still assigned (one revoked meanwhile was committed up to the batch before; its
        next owner redoes this one, which the inbox knows, and no offset of ours lands
        over its commits)."""
        if self._publishing is not None:
            records, publication = self._publishing
            self._publishing = None
            await publication
            owned = {(tp.topic, tp.partition) for tp in self._assigned}
            self._commit([r for r in records if (r.topic, r.partition) in owned])

    async def _consume(self) -> None:
        backoff = 0.05
        while not self.stopping:
            try:
                messages = await self._in_thread(self._fetch)
            except Exception as exc:  # librdkafka raised (a fatal error): keep the member
                log.error("%s: fetching failed, retrying in %.2fs: %s", self.name, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self.stopping:
                # the stop began while this fetch was under way: what it brought is neither
                # decided nor committed, so the stop waits for no new batch; the partition's
                # next owner (or this service restarted) reads it again from the commit
                return
            records = self._records(messages)
            if not records:
                await self._settle()
                continue
            try:
                publication = await self.on_batch(records)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.stopping:
                    return  # not committed: the next owner of the partitions redoes it
                # the consumer retries and dead-letters a record itself; what reaches here
                # (the dead-letter topic unreachable, say) is tried again from the start
                log.exception("%s: batch failed, reading it again", self.name)
                await self._in_thread(self._rewind, records)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.05
            # here, between fetches: the commit and ``_done`` are touched only while the
            # fetching thread is idle (its revoke callback reads ``_done``)
            await self._settle()
            if publication is None:
                self._commit(records)
            else:
                self._publishing = (records, publication)

    def _fetch(self) -> list[Message]:
        consumer = self._consumer
        if consumer is None:
            return []
        first = consumer.poll(POLL_SECONDS)
        if first is None:
            return []
        if self.max_batch == 1:
            return [first]
        return [first, *consumer.consume(self.max_batch - 1, 0)]

    def _records(self, messages: list[Message]) -> list[FetchedRecord]:
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(_record(message))
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("%s: %s", self.name, error)
        return records

    def _commit(self, records: list[FetchedRecord]) -> None:
        last: dict[tuple[str, int], int] = {}
        for record in records:
            last[record.topic, record.partition] = record.offset + 1
        self._done |= last
        if last and self._consumer is not None:
            self._consumer.commit(
                offsets=_positions(last),
                asynchronous=True,
            )

    def _rewind(self, records: list[FetchedRecord]) -> None:
        """Seek each partition of a failed batch back to its first record (librdkafka
        drops what it had prefetched after it)."""
        first: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            first[key] = min(first.get(key, record.offset), record.offset)
        if self._consumer is None:
            return
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except Exception as exc:  # revoked meanwhile: its next owner starts there
                log.info("%s: no seek on %s[%d]: %s", self.name, topic, partition, exc)

    # --- on the fetching thread ----------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = list(partitions)
        log.info("%s: assigned %s", self.name, sorted(p.partition for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Taken away: what was decided is committed before the next owner reads on."""
        revoked = {(p.topic, p.partition) for p in partitions}
        offsets = _positions({tp: o for tp, o in self._done.items() if tp in revoked})
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # the next owner redoes them; the inbox knows them
                log.warning("%s: commit on revoke failed: %s", self.name, exc)
        for key in revoked:
            self._done.pop(key, None)
        self._assigned = [p for p in self._assigned if (p.topic, p.partition) not in revoked]

    def _close(self, consumer: Consumer) -> None:
        offsets = _positions(self._done)
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:
                log.warning("%s: final commit failed: %s", self.name, exc)
        self._done.clear()
        consumer.close()

    def _on_error(self, error: KafkaError) -> None:
        # librdkafka reconnects and retries by itself: a dropped connection (an idle one
        # the broker closed, a broker restarting) is routine; no broker at all is not
        if error.fatal():
            log.error("%s: kafka: %s", self.name, error)
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            log.warning("%s: kafka: %s", self.name, error)
        else:
            log.info("%s: kafka: %s", self.name, error)

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)
