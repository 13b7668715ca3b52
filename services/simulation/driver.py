"""Send the simulated city over Kafka on a simulated clock, deterministically.

The clock advances in ticks (2 simulated hours; quiet nights are skipped). Per hub, a
tick is a sequence of steps: the carriers' commands for that hub (one batch), then its
vehicles' reports, one vehicle at a time. A round sends every hub's next step, then
waits until the services have *settled* (settling.py): every consumer group that matters
has committed up to the end of its topics, and the services publish what a record caused
before they commit its offset, so nothing is in flight. A hub's booking events and
telemetry are therefore never in flight at the same time, and a vehicle's reports never
race another vehicle's of the same hub: dispatch sees the same sequence of events for
each hub in every run, plans the same waves, and the same seed gives the same report.

Only Kafka is used: the producer, a group-less reader of the event topics and DLQs, and
the admin API for consumer-group offsets. No service internals, no databases.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from contracts.dispatch import RoutePlanned
from contracts.envelope import Payload, encode, new_event
from contracts.fleet import StopFailed, StopFailedV2
from contracts.topics import (
    BOOKING_EVENTS,
    CARRIER_COMMANDS,
    DISPATCH_EVENTS,
    FLEET_TELEMETRY,
    TOPICS,
)
from services.runtime.kafka import ensure_topics
from services.runtime.kafka_security import aiokafka_security_kwargs
from services.runtime.settings import Settings
from services.simulation import model
from services.simulation.catalogue import PublishedHubs
from services.simulation.observed import Observed
from services.simulation.settling import Groups, Settling

TICK = timedelta(hours=2)
# The month simulated unless told otherwise: complete and in the past, so that a run is
# the same on any day (the README's numbers come from it). A past month means past event
# times: the services decide on the envelope's time, Kafka's record timestamps stay the
# producer's wall clock (see _send).
DEFAULT_START = date(2026, 9, 1)


def days_of_month(start: date) -> int:
    """The days from ``start`` to the end of its calendar month."""
    following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - start).days


def next_monday(today: date) -> date:
    return today + timedelta(days=7 - today.weekday())


class Simulation(Settling):
    observed: Observed  # Settling counts its settles in it

    def __init__(
        self,
        settings: Settings,
        bootstrap: list[str],
        *,
        days: int,
        seed: int,
        start: date | None = None,
        hubs: PublishedHubs,
        driving_groups: Groups,
        projection_groups: Groups,
        rates: model.Rates = model.Rates(),
        on_day: Callable[[int], None] = lambda day: None,
        run_id: str | None = None,
        pace: float = 0.0,
    ) -> None:
        """``pace``: wall seconds per simulated tick (2 hours), so that people can watch
        (the demo after its month); 0 runs as fast as the services settle."""
        if days < 1:
            raise ValueError("days must be at least 1")
        self.settings = settings
        self.bootstrap = bootstrap
        self.days = days
        self.seed = seed
        self.start = start or DEFAULT_START
        self.rates = rates
        self.published = hubs
        self.hubs = hubs.hubs
        self.driving_groups = driving_groups
        self.projection_groups = projection_groups
        self.on_day = on_day
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.observed = Observed()
        # per hub: what is due when (the hubs advance independently)
        self._heaps: dict[str, list[tuple[datetime, int, model.Action]]] = defaultdict(list)
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._new_routes: dict[str, list[tuple[RoutePlanned, datetime]]] = defaultdict(list)
        self.carriers = model.CARRIERS  # each sends on its own topic (the gateway's ingress)
        super().__init__()  # the coordinator cache and the watcher's snapshots
        self._progress: dict[str, datetime] = {}
        self.pace = pace
        self._paced_from: tuple[datetime, float] | None = None  # (simulated, monotonic)

    # --- Kafka plumbing ---------------------------------------------------------------
    async def _open(self) -> None:
        security = aiokafka_security_kwargs(self.settings)
        await ensure_topics(self.bootstrap, self.settings)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            **security,
        )
        self.reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=5,  # a long poll delays every settle (see DEMO_TUNING)
            **security,
        )
        # a consumer that never fetches: its offset look-ups don't queue behind a fetch
        self.offsets = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, **security
        )
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **security)
        await self.producer.start()
        await self.reader.start()
        await self.offsets.start()
        await self.admin.start()
        topic = self.settings.topic
        self.partitions: dict[str, list[TopicPartition]] = {}
        own = [CARRIER_COMMANDS.for_carrier(c) for c in self.carriers]
        dead_letters = [t.dlq for t in TOPICS] + [f"{name}.dlq" for name in own]
        for name in [t.name for t in TOPICS] + own + dead_letters:
            parts = await self.producer.partitions_for(topic(name)) or set()
            self.partitions[name] = [TopicPartition(topic(name), p) for p in sorted(parts)]
            if not parts:
                raise RuntimeError(
                    f"topic {topic(name)} has no partitions: create the topics (the "
                    f"deployment's carrier registry must hold {', '.join(self.carriers)})"
                )
        read = [BOOKING_EVENTS.name, DISPATCH_EVENTS.name, *dead_letters]
        self.reader.assign([tp for name in read for tp in self.partitions[name]])
        # count only this run's outcomes, also against a deployment that ran before
        await self.reader.seek_to_end()
        self._all_tps = [tp for tps in self.partitions.values() for tp in tps]

    async def _close(self) -> None:
        for client in ("producer", "reader", "offsets", "admin"):
            obj = getattr(self, client, None)
            if obj is not None:
                await obj.close() if client == "admin" else await obj.stop()

    async def _send(self, actions: list[model.Action]) -> list[tuple[str, TopicPartition, int]]:
        """Send a step's records in order; returns (topic name, partition, offset) of each,
        once all are acked (the idempotent producer keeps their order per partition, so
        they need not be acked one by one)."""
        acks = []
        for action in actions:
            name = self._topic_of(action)
            for at, payload, event_id in action.messages:
                if isinstance(payload, bytes):
                    value = payload
                else:
                    value = encode(self._event(payload, action, at, event_id))
                    self.observed.stops_failed += isinstance(payload, StopFailed | StopFailedV2)
                # The record timestamp is the producer's wall clock (or, on the carriers'
                # topics, the broker's): simulated time runs ahead of it, and a real broker
                # refuses timestamps over an hour ahead. The simulated world's clock is the
                # simulation's: the gateway takes the envelope's time as the receipt time
                # (MICROHUB_INGRESS_RECEIPT_TIME=sender, DEMO_OVERRIDES; docs/simulation.md).
                ack = await self.producer.send(
                    self.settings.topic(name), value, key=action.key.encode()
                )
                acks.append((name, ack))
                self.observed.sent += 1
        done = await asyncio.gather(*(ack for _, ack in acks))
        return [
            (name, TopicPartition(m.topic, m.partition), m.offset)
            for (name, _), m in zip(acks, done, strict=True)
        ]

    @staticmethod
    def _topic_of(action: model.Action) -> str:
        """A carrier's commands (and its malformed ones) go to its own topic; the rest is
        the vehicles' telemetry."""
        if action.carrier is not None:
            return CARRIER_COMMANDS.for_carrier(action.carrier)
        return FLEET_TELEMETRY.name

    def _event(self, payload: Payload, action: model.Action, at: datetime, event_id: str | None):
        who = getattr(payload, "carrier_id", None)
        source = f"carrier/{who}" if who else f"vehicle/{action.key}"
        ident = f"{self.run_id}-{event_id}" if event_id else f"{self.run_id}-{next(self._ids):07d}"
        return new_event(payload, source=source, subject=action.hub_id, time=at, event_id=ident)

    def _take(self, record) -> None:
        name = record.topic[len(self.settings.kafka_topic_prefix) :]
        self.observed.take(name, record, self._new_routes)

    async def _read_available(self) -> None:
        while True:
            batch = await self.reader.getmany(timeout_ms=0, max_records=5000)
            for records in batch.values():
                for record in records:
                    self._take(record)
            if not batch:
                break

    # --- the simulated clock ------------------------------------------------------------
    def _push(self, action: model.Action) -> None:
        heapq.heappush(self._heaps[action.hub_id], (action.time, next(self._seq), action))

    def plan(self) -> None:
        hub_ids = [h.id for h in self.hubs]
        for d in range(self.days):
            day = self.start + timedelta(days=d)
            for hub in self.hubs:
                local = datetime.combine(day, time(0), tzinfo=hub.zone)
                slots = self.published.slots(hub, local.date())
                for action in model.hub_day(self.seed, hub, local, slots, self.rates):
                    self._push(action)
            midnight = datetime.combine(day, time(0), tzinfo=UTC)
            for action in model.poison(self.seed, midnight, self.rates.malformed_per_day, hub_ids):
                self._push(action)

    def _schedule_routes(self, hub_id: str, not_before: datetime) -> None:
        routes, self._new_routes[hub_id] = self._new_routes[hub_id], []
        for planned, at in sorted(routes, key=lambda r: (r[1], r[0].route_id)):
            for action in model.drive(self.seed, planned, at, self.rates):
                if action.time < not_before:
                    action = model.Action(
                        not_before,
                        action.kind,
                        action.hub_id,
                        action.key,
                        action.messages,
                        action.label,
                    )
                self._push(action)

    # --- the simulated clock, per hub ---------------------------------------------------
    async def _drive_hub(self, hub_id: str, first: datetime, drain_until: datetime) -> None:
        heap = self._heaps[hub_id]
        t = _floor(heap[0][0]) if heap else drain_until
        while heap and t < drain_until:
            await self._keep_pace(t)
            self._progress[hub_id] = t
            self._report_days(first)
            t_next = t + TICK
            due = []
            while heap and heap[0][0] < t_next:
                due.append(heapq.heappop(heap)[2])
            # the hub's commands in this tick, in time order, then its vehicles' reports,
            # each step settled before the next is sent. Commands travel on their carriers'
            # own topics and the gateway forwards each topic on its own: so that booking
            # sees them in the order they were sent, a run of one carrier's commands is
            # forwarded before the next carrier's run is sent (at one instant, carriers go
            # in a fixed order). Reports of vehicles whose keys share a partition are one
            # step: Kafka keeps their order and dispatch reads a partition in order.
            commands = sorted(
                (a for a in due if a.kind != "telemetry"),
                key=lambda a: (a.time, self._topic_of(a), a.key),
            )
            steps: list[list[model.Action]] = []
            for _, run in itertools.groupby(commands, key=self._topic_of):
                steps.append(list(run))
            forwarded_only = len(steps) - 1  # all but the last run: until forwarded
            by_partition: dict[TopicPartition, list[model.Action]] = {}
            for action in due:
                if action.kind == "telemetry":
                    tp = self._partition_of_key(FLEET_TELEMETRY.name, action.key)
                    by_partition.setdefault(tp, []).append(action)
            steps += by_partition.values()
            for index, step in enumerate(steps):
                sent = await self._send(step)
                if index < forwarded_only:
                    await self._consumed(sent)
                    continue
                await self._settle_hub(hub_id, sent)
                self._schedule_routes(hub_id, t_next)
            t = t_next
            if heap and heap[0][0] >= t_next + TICK:
                t = _floor(heap[0][0])  # skip quiet nights
        self._progress[hub_id] = drain_until
        self._report_days(first)

    async def _keep_pace(self, t: datetime) -> None:
        """With a pace: wait until the wall clock has caught up with simulated time ``t``
        (the hubs share one clock then, as people watching them expect)."""
        if not self.pace:
            return
        if self._paced_from is None:
            self._paced_from = (t, asyncio.get_running_loop().time())
        origin, wall = self._paced_from
        due = wall + (t - origin) / TICK * self.pace
        delay = due - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _report_days(self, first: datetime) -> None:
        slowest = min(self._progress.values())
        day = min(self.days, max(0, (slowest - first).days))
        while self._reported_day < day:
            self._reported_day += 1
            self.on_day(self._reported_day)

    async def run(self) -> Observed:
        self.plan()
        await self._open()
        self._partitioner = DefaultPartitioner()
        watcher: asyncio.Task[None] | None = None
        try:
            await self.settle()
            first = datetime.combine(self.start, time(0), tzinfo=UTC)
            drain_until = first + timedelta(days=self.days, hours=12)  # the last routes
            self._reported_day = 0
            self._progress = {hub_id: first for hub_id in self._heaps}
            watcher = asyncio.create_task(self._watch(), name="simulation-watch")
            drives = [self._drive_hub(h, first, drain_until) for h in list(self._heaps)]
            await asyncio.gather(*drives)
            watcher.cancel()
            for d in range(self._reported_day + 1, self.days + 1):
                self.on_day(d)
            await self.settle({**self.driving_groups, **self.projection_groups})
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            await self._close()
        return self.observed


def _floor(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(hour=at.hour - at.hour % 2, minute=0, second=0, microsecond=0)
