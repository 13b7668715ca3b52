"""Send the simulated city over Kafka on a simulated clock, deterministically.

The clock advances in ticks (30 simulated minutes). In each tick the carriers' commands
are sent first and the simulator waits until the services have *settled*: every consumer
group that matters has committed up to the end of its topics, and no new record appeared
for a few polls (so outboxes are drained too). Then each hub's vehicles report, one
vehicle per hub per round, each round settled. Booking events and telemetry of one hub
are therefore never in flight at the same time, and a hub's telemetry never races
another vehicle's: the dispatch service sees the same sequence of events in every run,
plans the same waves, and the same seed gives the same report.

Only Kafka is used: the producer, a group-less reader of the event topics and DLQs, and
the admin API for consumer-group offsets. No service internals, no databases.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.dispatch import RouteCompleted, RoutePlanned
from contracts.envelope import ContractError, Payload, decode, encode, new_event
from contracts.topics import (
    BOOKING_COMMANDS,
    BOOKING_EVENTS,
    DISPATCH_EVENTS,
    FLEET_TELEMETRY,
    TOPICS,
)
from services.booking.catalogue import load_catalogue
from services.runtime.kafka import aiokafka_security_kwargs, ensure_topics
from services.runtime.settings import Settings
from services.simulation import model

TICK = timedelta(hours=2)
SETTLE_POLL_SECONDS = 0.04
# Nothing new for this long after every group caught up: a handler's outbox rows are
# committed before its offset, and the relay, woken by that commit, publishes them well
# within this window even on a busy 2-core machine (0.06 s was measured too short there).
SETTLE_QUIET_SECONDS = 0.15
SETTLE_TIMEOUT_SECONDS = 20.0

# consumer groups (by consumer name) that must have caught up before the next step
DRIVING_GROUPS = {
    "booking": BOOKING_COMMANDS.name,
    "dispatch-bookings": BOOKING_EVENTS.name,
    "dispatch-telemetry": FLEET_TELEMETRY.name,
}
REPORTING_GROUPS = {
    "reporting-bookings": BOOKING_EVENTS.name,
    "reporting-dispatch": DISPATCH_EVENTS.name,
}


class SettleTimeout(RuntimeError):
    pass


def next_monday(today: date) -> date:
    return today + timedelta(days=7 - today.weekday())


@dataclass
class Observed:
    """What the services answered, read back from the topics (deduplicated by event id)."""

    booking: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    command_rejected: Counter[str] = field(default_factory=Counter)
    late_cancellations: int = 0
    routes_planned: int = 0
    routes_completed: int = 0
    stops_returned: int = 0
    km_by_city: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    routes_by_city: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    months_by_city: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sent: int = 0
    settles: int = 0
    _seen: set[str] = field(default_factory=set)
    _outcomes: set[tuple[str, str]] = field(default_factory=set)


class Simulation:
    def __init__(
        self,
        settings: Settings,
        bootstrap: list[str],
        *,
        days: int,
        seed: int,
        start: date | None = None,
        rates: model.Rates = model.Rates(),
        hubs_file: Path | None = None,
        on_day: Callable[[int], None] = lambda day: None,
        run_id: str | None = None,
    ) -> None:
        if days < 1:
            raise ValueError("days must be at least 1")
        self.settings = settings
        self.bootstrap = bootstrap
        self.days = days
        self.seed = seed
        self.start = start or next_monday(datetime.now(UTC).date())
        self.rates = rates
        self.hubs = load_catalogue(hubs_file or settings.hubs_file)
        self.on_day = on_day
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.observed = Observed()
        self._heap: list[tuple[datetime, int, model.Action]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._new_routes: list[tuple[RoutePlanned, datetime]] = []

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
            fetch_max_wait_ms=50,  # the default 500 ms long poll would slow every settle
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
        for t in TOPICS:
            for name in (t.name, t.dlq):
                parts = await self.producer.partitions_for(topic(name)) or set()
                self.partitions[name] = [TopicPartition(topic(name), p) for p in sorted(parts)]
                if not parts:
                    raise RuntimeError(f"topic {topic(name)} has no partitions: create the topics")
        read = [BOOKING_EVENTS.name, DISPATCH_EVENTS.name] + [t.dlq for t in TOPICS]
        self.reader.assign([tp for name in read for tp in self.partitions[name]])
        # count only this run's outcomes, also against a deployment that ran before
        await self.reader.seek_to_end()
        self._all_tps = [tp for tps in self.partitions.values() for tp in tps]

    async def _close(self) -> None:
        for client in ("producer", "reader", "offsets", "admin"):
            obj = getattr(self, client, None)
            if obj is not None:
                await obj.close() if client == "admin" else await obj.stop()

    async def _send(self, action: model.Action) -> None:
        if action.kind == "poison":
            name = BOOKING_COMMANDS.name if action.label == "booking" else FLEET_TELEMETRY.name
        else:
            name = BOOKING_COMMANDS.name if action.kind == "booking" else FLEET_TELEMETRY.name
        for at, payload, event_id in action.messages:
            if isinstance(payload, bytes):
                value = payload
            else:
                value = encode(self._event(payload, action, at, event_id))
            await self.producer.send(
                self.settings.topic(name),
                value,
                key=action.key.encode(),
                timestamp_ms=int(at.timestamp() * 1000),
            )
            self.observed.sent += 1

    def _event(self, payload: Payload, action: model.Action, at: datetime, event_id: str | None):
        who = getattr(payload, "carrier_id", None)
        source = f"carrier/{who}" if who else f"vehicle/{action.key}"
        ident = f"{self.run_id}-{event_id}" if event_id else f"{self.run_id}-{next(self._ids):07d}"
        return new_event(payload, source=source, subject=action.hub_id, time=at, event_id=ident)

    def _take(self, record) -> None:
        name = record.topic[len(self.settings.kafka_topic_prefix) :]
        if name.endswith(".dlq"):
            self.observed.dead_lettered[name[: -len(".dlq")]] += 1
            return
        try:
            event = decode(record.value)
        except ContractError:
            return
        if event.id in self.observed._seen:
            return  # at-least-once: an outbox may publish a row twice after a crash
        self.observed._seen.add(event.id)
        data, kind, obs = event.data, event.type.split(".")[-2], self.observed
        if name == BOOKING_EVENTS.name:
            # a carrier's retry is answered with the booking's outcome again (a new event):
            # count each booking's outcome once
            booking_id = getattr(data, "booking_id", None)
            if booking_id and kind != "command_rejected":
                if (kind, booking_id) in obs._outcomes:
                    return
                obs._outcomes.add((kind, booking_id))
            obs.booking[kind] += 1
            if kind == "rejected":
                obs.rejected[str(data.reason)] += 1
            elif kind == "command_rejected":
                obs.command_rejected[str(data.reason)] += 1
            elif kind == "cancelled" and data.late:
                obs.late_cancellations += 1
            elif kind == "confirmed":
                zone_month = data.slot_start.astimezone(_zone(data.hub.timezone)).strftime("%Y-%m")
                obs.months_by_city[data.hub.city_id].add(zone_month)
        elif isinstance(data, RoutePlanned):
            obs.routes_planned += 1
            self._new_routes.append((data, event.time))
        elif isinstance(data, RouteCompleted):
            obs.routes_completed += 1
            obs.routes_by_city[data.city_id] += 1
            obs.km_by_city[data.city_id] += data.actual_km
        elif kind == "stop_returned":
            obs.stops_returned += 1

    async def _drain_reader(self) -> bool:
        """Read what is there; True when the reader is at the end of every partition."""
        while True:
            batch = await self.reader.getmany(timeout_ms=0, max_records=5000)
            for records in batch.values():
                for record in records:
                    self._take(record)
            if not batch:
                break
        ends = await self.offsets.end_offsets(list(self.reader.assignment()))
        for tp, end in ends.items():
            if await self.reader.position(tp) < end:
                return False
        return True

    async def _lag(self, groups: dict[str, str], ends: dict[TopicPartition, int]) -> dict[str, int]:
        lags = {}
        for consumer, topic_name in groups.items():
            group = self.settings.group(consumer)
            committed = await self.admin.list_consumer_group_offsets(
                group, partitions=self.partitions[topic_name]
            )
            lag = 0
            for tp in self.partitions[topic_name]:
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else 0
                lag += max(0, ends.get(tp, 0) - done)
            lags[group] = lag
        return lags

    async def settle(self, groups: dict[str, str] = DRIVING_GROUPS) -> None:
        """Wait until the services have consumed everything and published what follows."""
        await self.producer.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT_SECONDS
        previous: dict[TopicPartition, int] | None = None
        quiet_since: float | None = None
        while True:
            ends = await self.offsets.end_offsets(self._all_tps)
            lags = await self._lag(groups, ends)
            caught_up = await self._drain_reader()
            if caught_up and not any(lags.values()) and ends == previous:
                quiet_since = quiet_since or loop.time()
                if loop.time() - quiet_since >= SETTLE_QUIET_SECONDS:
                    self.observed.settles += 1
                    return
            else:
                quiet_since = None
            previous = ends
            if loop.time() > deadline:
                behind = ", ".join(f"{g}: {n}" for g, n in lags.items() if n) or "none"
                raise SettleTimeout(
                    f"the services did not settle within {SETTLE_TIMEOUT_SECONDS:.0f} s "
                    f"(records not yet consumed per consumer group: {behind}); are booking, "
                    "dispatch and reporting running against this Kafka and topic prefix?"
                )
            await asyncio.sleep(SETTLE_POLL_SECONDS)

    # --- the simulated clock ------------------------------------------------------------
    def _push(self, action: model.Action) -> None:
        heapq.heappush(self._heap, (action.time, next(self._seq), action))

    def plan(self) -> None:
        hub_ids = [h.id for h in self.hubs]
        for d in range(self.days):
            day = self.start + timedelta(days=d)
            for hub in self.hubs:
                local = datetime.combine(day, time(0), tzinfo=hub.zone)
                for action in model.hub_day(self.seed, hub, local, self.rates):
                    self._push(action)
            midnight = datetime.combine(day, time(0), tzinfo=UTC)
            for action in model.poison(self.seed, midnight, self.rates.malformed_per_day, hub_ids):
                self._push(action)

    def _schedule_routes(self, not_before: datetime) -> None:
        routes, self._new_routes = self._new_routes, []
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

    async def run(self) -> Observed:
        self.plan()
        await self._open()
        try:
            await self.settle()
            first = datetime.combine(self.start, time(0), tzinfo=UTC)
            end = first + timedelta(days=self.days)
            drain_until = end + timedelta(hours=12)  # let the last routes come back
            t = _floor(self._heap[0][0]) if self._heap else end
            reported_day = 0
            while self._heap and t < drain_until:
                t_next = t + TICK
                due = []
                while self._heap and self._heap[0][0] < t_next:
                    due.append(heapq.heappop(self._heap)[2])
                commands = sorted(
                    (a for a in due if a.kind != "telemetry"), key=lambda a: (a.time, a.key)
                )
                for action in commands:
                    await self._send(action)
                if commands:
                    await self.settle()
                    self._schedule_routes(t_next)
                by_hub: dict[str, list[model.Action]] = defaultdict(list)
                for action in due:
                    if action.kind == "telemetry":
                        by_hub[action.hub_id].append(action)
                for round_ in itertools.zip_longest(*by_hub.values()):
                    for action in round_:
                        if action is not None:
                            await self._send(action)
                    await self.settle()
                    self._schedule_routes(t_next)
                t = t_next
                if self._heap and self._heap[0][0] >= t_next + TICK:
                    t = _floor(self._heap[0][0])  # skip quiet nights
                day = min(self.days, max(0, (t - first).days))
                if day > reported_day:
                    for d in range(reported_day + 1, day + 1):
                        self.on_day(d)
                    reported_day = day
            for d in range(reported_day + 1, self.days + 1):
                self.on_day(d)
            await self.settle({**DRIVING_GROUPS, **REPORTING_GROUPS})
        finally:
            await self._close()
        return self.observed


def _floor(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(hour=at.hour - at.hour % 2, minute=0, second=0, microsecond=0)


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
