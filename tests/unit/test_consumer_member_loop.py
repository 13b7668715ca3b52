"""The consumer group member's loop (services/runtime/rdkafka_consumer.py) without a
broker: a fetch that raises is retried, not the end of consuming; a batch is committed
at the offset after its last record, only once it was handled."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from services.runtime.rdkafka_consumer import FetchedRecord, RdkafkaSubscription
from tests.support.waiting import eventually


class _Message:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "commands"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return 1, 1_700_000_000_000  # create time

    def key(self) -> bytes:
        return b"hub"

    def value(self) -> bytes:
        return b"{}"

    def headers(self) -> None:
        return None


class _Consumer:
    """Raises on its first poll, then hands out offsets 7 and 8, then nothing."""

    def __init__(self) -> None:
        self.polls = 0
        self.closed = threading.Event()  # set by the test: a waiting poll returns at once
        self.commits: list[list[tuple[str, int, int]]] = []

    def poll(self, timeout: float) -> _Message | None:
        self.polls += 1
        if self.polls == 1:
            raise KafkaException(KafkaError(KafkaError._FATAL, "a fatal error"))
        if self.polls == 2:
            return _Message(7)
        self.closed.wait(timeout)  # as librdkafka: nothing came within the timeout
        return None

    def consume(self, count: int, timeout: float) -> list[_Message]:
        return [_Message(8)] if self.polls == 2 else []

    def commit(self, *, offsets: Any, asynchronous: bool) -> None:
        self.commits.append([(o.topic, o.partition, o.offset) for o in offsets])


async def test_a_fetch_that_raises_is_retried_and_a_handled_batch_committed() -> None:
    handled: list[list[int]] = []

    async def on_batch(records: list[FetchedRecord]) -> None:
        handled.append([r.offset for r in records])
        assert consumer.commits == []  # not before it was handled

    member = RdkafkaSubscription(
        {}, name="test", topic="commands", pattern=False, max_batch=10, on_batch=on_batch
    )
    consumer = _Consumer()
    member._consumer = consumer  # type: ignore[assignment]
    member._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    task = asyncio.create_task(member._run())
    try:
        await eventually(lambda: consumer.commits != [], what="the batch committed")
    finally:
        member.stopping = True
        consumer.closed.set()
        await task
        member._thread.shutdown()
    assert handled == [[7, 8]]
    assert consumer.commits == [[("commands", 2, 9)]]


class _Batches:
    """Hands out one record a poll (offsets 1, 2, …, ``last``), then nothing."""

    def __init__(self, last: int) -> None:
        self.last = last
        self.polls = 0
        self.closed = threading.Event()
        self.commits: list[list[tuple[str, int, int]]] = []

    def poll(self, timeout: float) -> _Message | None:
        self.polls += 1
        if self.polls <= self.last:
            return _Message(self.polls)
        self.closed.wait(timeout)
        return None

    def consume(self, count: int, timeout: float) -> list[_Message]:
        return []

    def commit(self, *, offsets: Any, asynchronous: bool) -> None:
        self.commits.append([(o.topic, o.partition, o.offset) for o in offsets])


class _Acks:
    """A publication's acks, as the member awaits them: ``awaited`` once it waits."""

    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.awaited = False

    def __await__(self) -> Any:
        self.awaited = True
        return self.future.__await__()


def _member_on(consumer: _Batches, on_batch: Any) -> RdkafkaSubscription:
    member = RdkafkaSubscription(
        {}, name="test", topic="commands", pattern=False, max_batch=10, on_batch=on_batch
    )
    member._consumer = consumer  # type: ignore[assignment]
    member._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    member._assigned = [TopicPartition("commands", 2)]  # as the group's assignment does
    return member


async def test_the_next_batch_is_decided_while_the_last_ones_publication_waits_for_acks() -> None:
    """A batch's offsets are committed only once its publication is done, and in order;
    meanwhile the next batch is decided rather than waiting for the broker's acks."""
    acks = _Acks()
    decided: list[list[int]] = []

    async def on_batch(records: list[FetchedRecord]) -> _Acks | None:
        decided.append([r.offset for r in records])
        return acks if len(decided) == 1 else None

    consumer = _Batches(last=2)
    member = _member_on(consumer, on_batch)
    task = asyncio.create_task(member._run())
    try:
        await eventually(lambda: acks.awaited, what="the member waiting for the first acks")
        assert decided == [[1], [2]]  # the second batch did not wait for them
        assert consumer.commits == []  # neither batch is committed ahead of the first acks
        acks.future.set_result(None)
        await eventually(lambda: len(consumer.commits) == 2, what="both batches committed")
    finally:
        member.stopping = True
        consumer.closed.set()
        if not acks.future.done():
            acks.future.set_result(None)  # a failed check: the member's stop waits for them
        await task
        member._thread.shutdown()  # type: ignore[union-attr]
    assert decided == [[1], [2]]
    assert consumer.commits == [[("commands", 2, 2)], [("commands", 2, 3)]]


async def _stop_while_a_batch_waits_for_acks(
    *, revoked: bool = False
) -> tuple[list[list[tuple[str, int, int]]], list[list[tuple[str, int, int]]]]:
    """One batch decided, its acks not come yet, then the member stopped (its partition
    revoked first if ``revoked``): the commits made before the acks came, and after."""
    acks = _Acks()

    async def on_batch(records: list[FetchedRecord]) -> _Acks:
        return acks

    consumer = _Batches(last=1)
    member = _member_on(consumer, on_batch)
    task = asyncio.create_task(member._run())
    try:
        await eventually(lambda: consumer.polls >= 2, what="the batch decided, the next poll")
        if revoked:
            member._assigned = []  # a rebalance took partition 2 away during that poll
        member.stopping = True
        consumer.closed.set()
        await eventually(lambda: acks.awaited, what="the stopping member waiting for the acks")
        before = list(consumer.commits)
        assert not task.done()
    finally:
        acks.future.set_result(None)
        await task
        member._thread.shutdown()  # type: ignore[union-attr]
    return before, consumer.commits


async def test_a_stop_commits_the_last_batch_once_its_publication_is_done() -> None:
    before, after = await _stop_while_a_batch_waits_for_acks()
    assert before == []
    assert after == [[("commands", 2, 2)]]


async def test_a_partition_revoked_while_its_batch_waits_for_acks_is_not_committed_by_it() -> None:
    """Its next owner reads on from the offsets committed on revocation (up to the batch
    before) and redoes the batch; a late commit of ours would land over the owner's."""
    _, after = await _stop_while_a_batch_waits_for_acks(revoked=True)
    assert after == []
