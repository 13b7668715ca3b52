"""Settling: waiting until the services have consumed what the simulation sent and
published what it caused, by watching the consumer groups' committed offsets.

Apart from the simulated clock and the sending (driver.py), which decide *what* is sent
*when*; this decides when the next step may go. ``Settling`` is a base class of
``driver.Simulation`` rather than an object of its own because both work on the same
Kafka clients, which the simulation opens; the names it uses and does not set are
declared below. It owns the rest: the coordinator cache and the watcher's snapshots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from contracts.topics import BOOKING_COMMANDS, BOOKING_EVENTS, CARRIER, DISPATCH_EVENTS
from services.runtime.settings import Settings

SETTLE_POLL_SECONDS = 0.01
# A crashed service's partitions move after its consumer group's session timeout (10 s)
# and its restart: a settle waits that out rather than failing the run.
SETTLE_TIMEOUT_SECONDS = 60.0

# Consumer groups (by consumer name) and their topics, from whoever runs the simulation
# (the app derives them from the services' declarations): the ones whose records cause
# events must have caught up before the next step ("driving"), the projections only
# before the reports are fetched. A carrier topic's name (``{carrier}``) stands for the
# topic of each of the simulation's carriers.
Groups = dict[str, str]


class SettleTimeout(RuntimeError):
    pass


class _Counts(Protocol):
    settles: int  # how often the services settled (observed.Observed)


class Settling:
    """Settle everything (``settle``) or one hub's last step (``_settle_hub``, on the
    snapshots ``_watch`` takes)."""

    # set by driver.Simulation (its __init__, _open and run)
    settings: Settings
    carriers: tuple[str, ...]
    driving_groups: Groups
    observed: _Counts
    producer: AIOKafkaProducer
    reader: AIOKafkaConsumer  # the simulation's own group-less reader of the event topics
    offsets: AIOKafkaConsumer
    admin: AIOKafkaAdminClient
    partitions: dict[str, list[TopicPartition]]
    _all_tps: list[TopicPartition]
    _partitioner: DefaultPartitioner
    # reads what the reader can get now into what was observed (driver.Simulation)
    _read_available: Callable[[], Awaitable[None]]

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None  # the watcher's latest
        self._snapshot_taken = asyncio.Condition()
        self._waiting = 0
        self._coordinators: dict[str, int] = {}  # consumer group -> its coordinator

    # --- settling everything ------------------------------------------------------------
    async def _drain_reader(self) -> bool:
        """Read what is there; True when the reader is at the end of every partition."""
        await self._read_available()
        ends = await self.offsets.end_offsets(list(self.reader.assignment()))
        for tp, end in ends.items():
            if await self.reader.position(tp) < end:
                return False
        return True

    async def _committed(self, group: str, topic_name: str) -> dict[TopicPartition, int]:
        """A consumer group's committed offsets on a topic (0 where none yet).

        The group's coordinator is looked up once, not before every request (the watcher
        asks ~100 times a second); when it moved, the request fails and it is asked again.
        """
        partitions = [tp for name in self._topics(topic_name) for tp in self.partitions[name]]
        return await self._committed_on(group, partitions)

    async def _committed_on(
        self, group: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        for attempt in (1, 2):
            coordinator = self._coordinators.get(group)
            if coordinator is None:
                coordinator = self._coordinators[group] = await self.admin.find_coordinator(group)
            try:
                found = await self.admin.list_consumer_group_offsets(
                    group, coordinator, partitions=partitions
                )
                break
            except KafkaError:
                self._coordinators.pop(group, None)
                if attempt == 2:
                    raise
        committed = {}
        for tp in partitions:
            meta = found.get(tp)
            committed[tp] = meta.offset if meta is not None and meta.offset >= 0 else 0
        return committed

    def _topics(self, topic_name: str) -> list[str]:
        """The topic, or each carrier's for a carrier topic's name."""
        if CARRIER in topic_name:
            return [topic_name.replace(CARRIER, c) for c in self.carriers]
        return [topic_name]

    async def _lag(self, groups: dict[str, str], ends: dict[TopicPartition, int]) -> dict[str, int]:
        async def lag_of(consumer: str, topic_name: str) -> tuple[str, int]:
            group = self.settings.group(consumer)
            committed = await self._committed(group, topic_name)
            return group, sum(max(0, ends.get(tp, 0) - done) for tp, done in committed.items())

        return dict(await asyncio.gather(*(lag_of(c, t) for c, t in groups.items())))

    async def settle(self, groups: Groups | None = None) -> None:
        """Wait until the services have consumed everything and published what follows.

        The services publish the events a record caused before they commit its offset
        (``outbox_publish_before_ack_seconds``). So once every group has committed up to
        the end offsets read *before* its committed offsets, and the end offsets read
        *after* them are the same, nothing is in flight: every consumed record's
        consequences are in those ends, and those ends are consumed."""
        groups = self.driving_groups if groups is None else groups
        await self.producer.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT_SECONDS
        while True:
            before = await self.offsets.end_offsets(self._all_tps)
            lags, caught_up = await asyncio.gather(self._lag(groups, before), self._drain_reader())
            if caught_up and not any(lags.values()):
                after = await self.offsets.end_offsets(self._all_tps)
                if after == before:
                    self.observed.settles += 1
                    return
            if loop.time() > deadline:
                behind = ", ".join(f"{g}: {n}" for g, n in lags.items() if n) or "none"
                raise SettleTimeout(
                    f"the services did not settle within {SETTLE_TIMEOUT_SECONDS:.0f} s "
                    f"(records not yet consumed per consumer group: {behind}); are booking, "
                    "dispatch and reporting running against this Kafka and topic prefix, "
                    "with MICROHUB_OUTBOX_PUBLISH_BEFORE_ACK_SECONDS above 0?"
                )
            await asyncio.sleep(SETTLE_POLL_SECONDS)

    # --- settling one hub ---------------------------------------------------------------
    async def _watch(self) -> None:
        """While a hub waits, take snapshots: the driving groups' committed offsets, what
        the reader has read (it reads everything there is), then the end offsets."""
        watched = {self.settings.group(c): t for c, t in self.driving_groups.items()}
        while True:
            if not self._waiting:
                await asyncio.sleep(SETTLE_POLL_SECONDS)
                continue
            # how far things are consumed first, the end offsets after: whatever a
            # consumed record caused was published before its offset was committed, so
            # it lies below these ends
            committed = await asyncio.gather(*(self._committed(g, t) for g, t in watched.items()))
            await self._read_available()
            done = {tp: await self.reader.position(tp) for tp in self.reader.assignment()}
            for by_tp in committed:
                done.update(by_tp)  # each partition is consumed by one driving group
            ends = await self.offsets.end_offsets(self._all_tps)
            async with self._snapshot_taken:
                gen = self._snapshot.gen + 1 if self._snapshot else 1
                self._snapshot = Snapshot(gen, ends, done)
                self._snapshot_taken.notify_all()
            await asyncio.sleep(SETTLE_POLL_SECONDS)

    def _partition_of_key(self, topic_name: str, key: str) -> TopicPartition:
        """Where a record with this key goes (the producers' default partitioner); a hub's
        events are keyed by the hub id, a vehicle's reports by the vehicle id."""
        tps = self.partitions[topic_name]
        index = self._partitioner(key.encode(), list(range(len(tps))), None)
        return tps[index]

    async def _consumed(self, sent: list[tuple[str, TopicPartition, int]]) -> None:
        """Until the driving group of each record's topic has committed past it: what
        consuming it caused is then published (the services publish before they commit),
        such as a carrier's commands forwarded to booking's topic, behind whatever was
        forwarded before them. Asks only for these partitions' committed offsets, not a
        whole snapshot: cheap enough between one carrier's commands and the next's."""
        owner = {
            name: consumer
            for consumer, template in self.driving_groups.items()
            for name in self._topics(template)
        }
        last: dict[str, dict[TopicPartition, int]] = {}
        for name, tp, offset in sent:
            group = self.settings.group(owner[name])
            last.setdefault(group, {})[tp] = max(offset, last.get(group, {}).get(tp, -1))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT_SECONDS
        for group, records in last.items():
            while True:
                committed = await self._committed_on(group, list(records))
                if all(committed[tp] > offset for tp, offset in records.items()):
                    break
                if loop.time() > deadline:
                    raise SettleTimeout(
                        f"{group} did not consume {records} within {SETTLE_TIMEOUT_SECONDS:.0f} s"
                    )
                await asyncio.sleep(SETTLE_POLL_SECONDS / 2)

    async def _settle_hub(self, hub_id: str, sent: list[tuple[str, TopicPartition, int]]) -> None:
        """Wait until nothing caused by this hub's last step is in flight: in one snapshot
        taken after the step was sent, every partition that can carry it (where its
        records went, the hub's commands as the gateway forwards them, its booking and
        dispatch events) is consumed (by its consumer group, or the reader) up to the end
        offset read after that. The services publish what a record caused before
        committing its offset, so those ends hold every consequence of what was consumed."""
        watch = {tp for _, tp, _ in sent}
        watch.add(self._partition_of_key(BOOKING_COMMANDS.name, hub_id))
        watch.add(self._partition_of_key(BOOKING_EVENTS.name, hub_id))
        watch.add(self._partition_of_key(DISPATCH_EVENTS.name, hub_id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT_SECONDS
        # a snapshot in the making may have read the consumed offsets before these
        # records were sent: only the one after it counts
        first_valid = (self._snapshot.gen if self._snapshot else 0) + 2

        def settled() -> bool:
            last = self._snapshot
            return (
                last is not None
                and last.gen >= first_valid
                and all(last.done.get(tp, 0) >= last.ends[tp] for tp in watch)
            )

        self._waiting += 1
        try:
            async with self._snapshot_taken:
                while not settled():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        last = self._snapshot
                        behind = (
                            {
                                f"{tp.topic}[{tp.partition}]": last.ends[tp] - last.done.get(tp, 0)
                                for tp in watch
                            }
                            if last
                            else "no snapshot yet"
                        )
                        raise SettleTimeout(
                            f"hub {hub_id}: the services did not settle within "
                            f"{SETTLE_TIMEOUT_SECONDS:.0f} s (records not yet consumed: "
                            f"{behind}); are booking, dispatch and reporting running "
                            "against this Kafka and topic prefix, with "
                            "MICROHUB_OUTBOX_PUBLISH_BEFORE_ACK_SECONDS above 0?"
                        )
                    try:
                        await asyncio.wait_for(self._snapshot_taken.wait(), remaining)
                    except TimeoutError:
                        continue
        finally:
            self._waiting -= 1
        self.observed.settles += 1


@dataclass(frozen=True)
class Snapshot:
    """How far each partition is consumed (by its driving consumer group, or for the
    event topics by the simulation's own reader), and the end offsets read after."""

    gen: int
    ends: dict[TopicPartition, int]
    done: dict[TopicPartition, int]
