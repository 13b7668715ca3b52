"""Booking at carrier scale: how many decisions per second `microhub serve booking` makes,
what a decision costs in service CPU, how long a carrier waits for its answer, and how
throughput grows with processes. Everything against Apache Kafka (6 partitions) and
PostgreSQL and SQLite, with a ceiling measured in the same run: a plain aiokafka
consume + produce of the same records (what any Kafka service must at least spend).

    python -m bench.booking_throughput                         # everything (several minutes)
    python -m bench.booking_throughput --cases throughput --commands 5000

Rows:
- throughput: N commands pre-loaded, one process; decisions/s between its first and last
  outcome, the ratio to the ceiling, service CPU µs per decision (from /proc);
- history: the same after a year of bookings per hub (~40 000) are in the database;
- latency: commands offered at 20, 200 and 1 000 per second, command -> outcome p50/p99;
- processes: 1, 2 and 3 processes in one consumer group (PostgreSQL), aggregate rate.

Goals (issue 12): >= 5 000 decisions/s, >= 0.2x the ceiling, <= 200 µs CPU per decision,
history <= 10 % slower; p99 <= 100 ms at 1 000/s and <= 30 ms at 20/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from bench import cpu_budget, servers
from services.runtime.settings import Settings
from tests.support.kafka import create_topics

console = Console(width=160)
PARTITIONS = 6
MICROHUB = str(Path(sys.executable).parent / "microhub")
GOALS = {"rate": 5000.0, "ratio": 0.2, "cpu_us": 200.0, "history": 1.10}


# --------------------------------------------------------------------- the workload ---


def hub_ids() -> list[str]:
    """Two hubs on each of the 6 partitions (the producers' default partitioner)."""
    partitioner = DefaultPartitioner()
    chosen: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for n in range(1000):
        hub_id = f"hub-{n:03d}"
        part = partitioner(hub_id.encode(), list(range(PARTITIONS)), None)
        if len(chosen[part]) < 2:
            chosen[part].append(hub_id)
        if all(len(v) == 2 for v in chosen.values()):
            return sorted(h for v in chosen.values() for h in v)
    raise AssertionError("no hub ids cover every partition")


def catalogue(path: Path, hubs: list[str]) -> Path:
    every_day = {d: ["06:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    path.write_text(
        yaml.safe_dump(
            {
                "hubs": [
                    {
                        "id": h,
                        "name": h,
                        "city": {"id": "bench", "name": "Bench", "country": "DE",
                                 "timezone": "Europe/Berlin"},
                        "location": {"lat": 52.52, "lon": 13.40},
                        "opening_hours": every_day,
                        "slot_minutes": 60,
                        "docks_per_slot": 40,
                        "volume_per_slot_m3": 400.0,
                        "booking_horizon_days": 14,
                        "cancellation_cutoff_minutes": 120,
                    }
                    for h in hubs
                ]
            }
        )
    )  # fmt: skip
    return path


def first_monday() -> datetime:
    today = datetime.now(UTC)
    days = (7 - today.weekday()) % 7 or 7
    return (today + timedelta(days=days)).replace(hour=5, minute=0, second=0, microsecond=0)


def command(i: int, hubs: list[str], run: str, now: datetime) -> tuple[str, bytes]:
    """A valid booking request, JSON as a carrier sends it: (hub id, bytes)."""
    hub = hubs[i % len(hubs)]
    slot = now + timedelta(days=1 + (i // len(hubs)) % 10, hours=2 + (i // 120) % 12)
    stops = [
        {"stop_id": f"s{k}", "location": {"lat": 52.5 + k / 100, "lon": 13.4}, "parcels": 2}
        for k in range(3)
    ]
    doc = {
        "specversion": "1.0",
        "id": f"{run}-{i}",
        "source": "carrier/bench",
        "type": "microhub.booking.requested.v1",
        # each command its own instant, as carriers' clocks give them: one instant for all
        # would flatter whatever is kept per instant (the SQLite timestamps' texts)
        "time": (now + timedelta(microseconds=i)).isoformat(),
        "subject": hub,
        "datacontenttype": "application/json",
        "data": {
            "carrier_id": "bench",
            "carrier_reference": f"{run}-{i}",
            "hub_id": hub,
            "slot_start": slot.isoformat(),
            "consignment": {
                "parcel_count": 6,
                "weight_kg": 12.0,
                "volume_m3": 0.3,
                "depot": {"lat": 52.4, "lon": 13.2},
                "stops": stops,
            },
        },
    }
    return hub, json.dumps(doc).encode()


async def produce(bootstrap: list[str], topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        pending = [await producer.send(topic, value, key=key.encode()) for key, value in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


# ------------------------------------------------------------------------ measuring ---


@dataclass
class Outcomes:
    """Reads the events topic; when each carrier reference was first answered.

    A librdkafka reader on a thread of its own (every partition assigned, no group): the
    aiokafka reader used before parsed every record in Python on the bench's event loop,
    and with the aiokafka producer of the latency case the bench took ~45 % of the two
    cores at 1 000/s, beside the service it measures (docs/booking-throughput.md)."""

    bootstrap: list[str]
    topic: str
    arrived: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0

    async def __aenter__(self) -> Outcomes:
        self.consumer = Consumer(
            {
                "bootstrap.servers": ",".join(self.bootstrap),
                "group.id": "bench-reader",  # librdkafka wants one; nothing joins or commits
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "log_level": 3,
            }
        )
        partitions = self.consumer.list_topics(self.topic, timeout=30).topics[self.topic].partitions
        self.consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(partitions)]
        )
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outcomes", daemon=True)
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping.set()
        await asyncio.to_thread(self._thread.join)
        self.consumer.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            first = self.consumer.poll(0.1)
            if first is None:
                continue
            now = time.monotonic()  # when the first of them arrived
            for record in [first, *self.consumer.consume(5000, 0)]:
                if record.error() is not None:
                    continue
                ref = orjson.loads(record.value() or b"{}")["data"].get("carrier_reference")
                if ref in self.arrived:
                    self.duplicates += 1
                else:
                    self.arrived[ref] = now

    async def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrived) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.arrived)} of {count} outcomes after {timeout:.0f} s")
            await asyncio.sleep(0.05)


class Booking:
    """`microhub serve booking` in a child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.sink = log.open("wb")
        self.proc = subprocess.Popen(
            [MICROHUB, "serve", "booking", "--quiet"], env=env, stdout=self.sink, stderr=self.sink
        )

    def wait_running(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while "booking running" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"booking did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.sink.close()


@dataclass
class Case:
    kafka: list[str]
    postgres_admin: str
    tmp: Path
    hubs: list[str]
    # MICROHUB_* settings for the service under test (--set): the bench's own environment's
    # are not passed on, so that a run measures the defaults unless told otherwise
    service_settings: dict[str, str] = field(default_factory=dict)

    @contextmanager
    def database(self, kind: str) -> Iterator[str]:
        if kind == "sqlite":
            path = self.tmp / f"booking-{uuid.uuid4().hex[:8]}.db"
            yield f"sqlite:///{path}"
            path.unlink(missing_ok=True)
            return
        name = f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_url(self.postgres_admin).set(drivername="postgresql")
        asyncio.run(servers.execute(admin.render_as_string(False), f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name).render_as_string(False)
        finally:
            asyncio.run(
                servers.execute(
                    admin.render_as_string(False), f'DROP DATABASE "{name}" WITH (FORCE)'
                )
            )

    def settings(self) -> Settings:
        return Settings(
            kafka_bootstrap_servers=",".join(self.kafka),
            kafka_topic_prefix=f"b{uuid.uuid4().hex[:8]}.",
        )

    def env(self, settings: Settings, database_url: str, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MICROHUB_")}
        return (
            env
            | {
                "MICROHUB_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "MICROHUB_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
                "MICROHUB_KAFKA_CLIENT_ID": name,
                "MICROHUB_DATABASE_URLS__BOOKING": database_url,
                "MICROHUB_HUBS_FILE": str(catalogue(self.tmp / "hubs.yaml", self.hubs)),
                "MICROHUB_DATA_DIR": str(self.tmp / name),
                "MICROHUB_HEALTH_PORT": "0",
                "MICROHUB_SWEEP_INTERVAL_SECONDS": "0",
                "MICROHUB_MAX_CLOCK_SKEW_SECONDS": "0",  # the bench's slots are next week's
            }
            | self.service_settings
        )


# --------------------------------------------------------------------------- cases ---


def ceiling(case: Case, commands: int) -> float:
    """Consume every record, parse it, produce an answer per record: records/s."""

    async def run() -> float:
        settings = case.settings()
        await create_topics(settings)
        source = settings.topic("microhub.booking.commands.v1")
        sink = settings.topic("microhub.booking.events.v1")
        now = first_monday()
        await produce(
            case.kafka, source, [command(i, case.hubs, "c", now) for i in range(commands)]
        )
        consumer = AIOKafkaConsumer(
            source,
            bootstrap_servers=case.kafka,
            group_id=f"{settings.kafka_topic_prefix}ceiling",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=case.kafka, enable_idempotence=True, acks="all"
        )
        await consumer.start()
        await producer.start()
        try:
            done = 0
            started = None
            while done < commands:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                if started is None and batch:
                    started = time.monotonic()
                acks = []
                for records in batch.values():
                    for record in records:
                        doc = json.loads(record.value)
                        answer = json.dumps({"id": doc["id"], "data": doc["data"]}).encode()
                        acks.append(await producer.send(sink, answer, key=record.key))
                await asyncio.gather(*acks)
                if batch:
                    await consumer.commit()
                done += sum(len(r) for r in batch.values())
            assert started is not None
            return commands / (time.monotonic() - started)
        finally:
            await producer.stop()
            await consumer.stop()

    return asyncio.run(run())


@dataclass
class Throughput:
    rate: float
    duplicates: int
    budget: cpu_budget.Budget  # the machine's CPU per decision, the service's among it

    @property
    def cpu_us(self) -> float:
        """The service's CPU µs per decision."""
        return self.budget.service_us


def throughput(case: Case, kind: str, commands: int, history: int = 0) -> Throughput:
    """N commands pre-loaded, one booking process: decisions/s and CPU per decision."""
    settings = case.settings()
    with case.database(kind) as url:
        if history:
            asyncio.run(_fill_history(url, case, history, settings))
            os.sync()  # the history written out before the run is timed (see latency())

        async def run() -> Throughput:
            await create_topics(settings)
            now = first_monday()
            records = [command(i, case.hubs, "t", now) for i in range(commands)]
            await produce(case.kafka, settings.topic("microhub.booking.commands.v1"), records)
            async with Outcomes(case.kafka, settings.topic("microhub.booking.events.v1")) as out:
                service = Booking(case.env(settings, url, "bench-1"), case.tmp / "booking.log")
                try:
                    await asyncio.to_thread(service.wait_running)
                    await out.wait_for(1, timeout=120)
                    before = cpu_budget.sample(service.proc.pid)
                    first_count = len(out.arrived)
                    await out.wait_for(commands, timeout=max(120, commands / 50))
                    after = cpu_budget.sample(service.proc.pid)
                finally:
                    service.stop()
                times = sorted(out.arrived.values())
                decided = commands - first_count
                elapsed = times[-1] - times[first_count - 1]
                return Throughput(
                    decided / elapsed, out.duplicates, cpu_budget.budget(before, after, decided)
                )

        return asyncio.run(run())


async def _fill_history(url: str, case: Case, per_hub: int, settings: Settings) -> None:
    """A year of decided bookings per hub, written straight into the booking database
    (after its migrations), slot ends in the past: what a long-lived hub carries."""
    from services.booking.service import BookingService
    from services.booking.store import bookings

    service = BookingService(settings, case.kafka, database_url=url)
    await service.migrate()
    start = datetime.now(UTC) - timedelta(days=365)
    rows = []
    for hub in case.hubs:
        for n in range(per_hub):
            slot = (start + timedelta(minutes=13 * n)).replace(second=0, microsecond=0)
            rows.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{hub}/{n}")),
                    "carrier_id": "history",
                    "carrier_reference": f"{hub}-{n}",
                    "hub_id": hub,
                    "slot_start": slot,
                    "slot_end": slot + timedelta(hours=1),
                    "volume_l": 300,
                    "status": ("checked_in", "cancelled", "no_show", "rejected")[n % 4],
                    "request_fingerprint": "x",
                    "request": {},
                    "outcome": {"type": "microhub.booking.confirmed.v1", "data": {}},
                    "decided_at": slot - timedelta(days=1),
                    "updated_at": slot,
                }
            )
    columns = {c.name for c in bookings.columns}
    rows = [{k: v for k, v in r.items() if k in columns} for r in rows]
    async with service.engine.begin() as conn:
        for first in range(0, len(rows), 5000):
            await conn.execute(bookings.insert(), rows[first : first + 5000])
    await service.engine.dispose()


# The first seconds of a latency run are shown apart: on this shared broker every run after
# the first had a burst ~1 s in (the broker's request threads busy, its appends taking
# 37-64 ms: its request log) and a just-started service's first batches (new statement
# shapes, caches) - commands sent then waited 200-600 ms at 1 000/s, after it 60-130 ms
# (docs/booking-throughput.md, "The next batch decided while the last one's acks come")
SETTLING_SECONDS = 2.0


@dataclass
class Latency:
    """Command -> outcome (ms): over the whole run, and over the commands sent after its
    first ``SETTLING_SECONDS``."""

    p50: float
    p99: float
    settled_p50: float
    settled_p99: float
    commands: int


def _p50_p99(waits: list[float]) -> tuple[float, float]:
    ordered = sorted(waits)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def latency(case: Case, kind: str, rate: int, seconds: float) -> Latency:
    """Commands offered at ``rate``/s for ``seconds``: command -> outcome p50, p99 (ms)."""
    # The history case wrote a gigabyte or two (480 000 bookings in each database) that the
    # kernel writes back for a minute afterwards: measured meanwhile, a carrier's wait
    # included that disk's queue (SQLite's p99 at 20/s 55-59 ms after it, 18-22 ms
    # without). Written out first, so that each rate is measured on a quiet disk.
    os.sync()
    settings = case.settings()
    with case.database(kind) as url:

        async def run() -> Latency:
            await create_topics(settings)
            async with Outcomes(case.kafka, settings.topic("microhub.booking.events.v1")) as out:
                service = Booking(case.env(settings, url, "bench-lat"), case.tmp / "booking.log")
                # librdkafka, records built beforehand: the carriers' side costs the two
                # cores little beside the service it measures
                producer = Producer(
                    {
                        "bootstrap.servers": ",".join(case.kafka),
                        "enable.idempotence": True,
                        "acks": "all",
                        "linger.ms": 0,
                        "partitioner": "murmur2_random",  # the hubs' partitions, as aiokafka
                        "log_level": 3,
                    }
                )
                topic = settings.topic("microhub.booking.commands.v1")
                now = first_monday()
                warm_up = [command(i, case.hubs, "w", now) for i in range(20)]
                total = int(rate * seconds)
                offered = [command(i, case.hubs, "l", now) for i in range(total)]
                sent: dict[str, float] = {}
                try:
                    await asyncio.to_thread(service.wait_running)
                    # warm-up: the group's first assignment and first decisions
                    for key, value in warm_up:
                        producer.produce(topic, value, key=key.encode())
                    producer.poll(0)
                    await out.wait_for(20, timeout=120)
                    started = time.monotonic()
                    for i, (key, value) in enumerate(offered):
                        due = started + i / rate
                        delay = due - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        sent[f"l-{i}"] = time.monotonic()
                        producer.produce(topic, value, key=key.encode())
                        producer.poll(0)  # delivery reports: none are asked for
                    await out.wait_for(20 + total, timeout=max(120, total / 20))
                finally:
                    await asyncio.to_thread(producer.flush, 30)
                    service.stop()
                timed = [(t, (out.arrived[ref] - t) * 1000) for ref, t in sent.items()]
                waits = [wait for _, wait in timed]
                settled = [wait for t, wait in timed if t - started >= SETTLING_SECONDS]
                return Latency(*_p50_p99(waits), *_p50_p99(settled or waits), len(waits))

        return asyncio.run(run())


def processes(case: Case, count: int, commands: int) -> float:
    """``count`` processes in one group on PostgreSQL: aggregate decisions/s."""
    settings = case.settings()
    with case.database("postgresql") as url:

        async def run() -> float:
            await create_topics(settings)
            now = first_monday()
            records = [command(i, case.hubs, "p", now) for i in range(commands)]
            await produce(case.kafka, settings.topic("microhub.booking.commands.v1"), records)
            async with Outcomes(case.kafka, settings.topic("microhub.booking.events.v1")) as out:
                started = [
                    Booking(case.env(settings, url, f"bench-{n}"), case.tmp / f"booking-{n}.log")
                    for n in range(count)
                ]
                try:
                    for service in started:
                        await asyncio.to_thread(service.wait_running)
                    await out.wait_for(commands, timeout=max(180, commands / 50))
                finally:
                    for service in started:
                        service.stop()
                times = sorted(out.arrived.values())
                # from the moment every process has joined: the first 10 % are the
                # rebalances of the processes joining one after another
                head = len(times) // 10
                return (len(times) - head) / (times[-1] - times[head])

        return asyncio.run(run())


# ---------------------------------------------------------------------------- main ---


def service_settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("MICROHUB_"):
            raise SystemExit(f"--set {pair!r}: expected MICROHUB_NAME=VALUE")
        settings[name] = value
    return settings


def budget_table(runs: list[tuple[str, str, Throughput]]) -> Table:
    """The machine's CPU per decision in each throughput run, by where it went, and the
    bounds it sets: one process can decide at most 1 s / its own CPU per decision; a
    machine at most cores * 1 s / everything's (bench/cpu_budget.py)."""
    cores = os.cpu_count() or 1
    table = Table(title="CPU µs per decision on this machine, and the bounds it sets")
    for column in (
        "database", "history", "service", "PostgreSQL", "broker", "rest", "machine",
        "one process ≤ /s", f"{cores} cores ≤ /s", "8 cores ≤ /s",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    for kind, history, run in runs:
        b = run.budget
        table.add_row(
            kind, history, f"{b.service_us:,.0f}", f"{b.postgres_us:,.0f}",
            f"{b.broker_us:,.0f}", f"{b.rest_us:,.0f}", f"{b.machine_us:,.0f}",
            f"{1e6 / b.service_us:,.0f}", f"{b.most_per_second(cores):,.0f}",
            f"{b.most_per_second(8):,.0f}",
        )  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--cases", default="throughput,history,latency,processes")
    parser.add_argument("--history-per-hub", type=int, default=40_000)
    parser.add_argument("--rates", default="20,200,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MICROHUB_NAME=VALUE",
        help="a setting of the service under test (repeatable), e.g. "
        "MICROHUB_KAFKA_FETCH_MAX_WAIT_MS=5",
    )
    args = parser.parse_args(argv)
    cases = set(args.cases.split(","))
    databases = [d for d in args.databases.split(",") if d]
    with (
        tempfile.TemporaryDirectory(prefix="microhub-bench-") as tmp,
        servers.kafka(say=console.print) as kafka,
        servers.postgres() as pg,
    ):
        case = Case(
            kafka.bootstrap,
            pg,
            Path(tmp),
            hub_ids(),
            service_settings(args.set),
        )
        console.print(
            f"Kafka: {kafka.description}; {len(case.hubs)} hubs on {PARTITIONS} partitions"
        )
        roof = ceiling(case, args.commands)
        table = Table(
            title=f"booking decisions, {args.commands:,} commands pre-loaded, one process"
        )
        for column in (
            "database",
            "history",
            "decisions/s",
            "ceiling/s",
            "ratio",
            "CPU µs/decision",
            "vs empty",
            "duplicates",
            "goal",
        ):
            table.add_column(column, justify="right")  # fmt: skip
        # The latency case runs before the history case: measured after it, on the same
        # broker and PostgreSQL cluster, a carrier waited for the history's aftermath
        # (SQLite's p50 at 1 000/s 520 ms against 122 ms before it, even with os.sync():
        # docs/booking-throughput.md)
        empties: dict[str, Throughput] = {}
        if "throughput" in cases:
            for kind in databases:
                empties[kind] = throughput(case, kind, args.commands)
                console.print(f"{kind} empty: {empties[kind]}")
        if "latency" in cases:
            lat = Table(title="command -> outcome latency, one process")
            settling = f"after {SETTLING_SECONDS:.0f} s"
            for column in (
                "database",
                "offered/s",
                "commands",
                "p50 ms",
                "p99 ms",
                f"p50 ms {settling}",
                f"p99 ms {settling}",
                "goal",
            ):
                lat.add_column(column, justify="right")
            for kind in databases:
                for rate in [int(r) for r in args.rates.split(",")]:
                    w = latency(case, kind, rate, args.seconds)
                    goal = {20: "p99 <= 30 ms", 1000: "p99 <= 100 ms"}.get(rate, "")
                    lat.add_row(
                        kind,
                        str(rate),
                        str(w.commands),
                        f"{w.p50:.1f}",
                        f"{w.p99:.1f}",
                        f"{w.settled_p50:.1f}",
                        f"{w.settled_p99:.1f}",
                        goal,
                    )
                    console.print(
                        f"{kind} {rate}/s: p50 {w.p50:.1f} ms, p99 {w.p99:.1f} ms; "
                        f"{settling}: p50 {w.settled_p50:.1f} ms, p99 {w.settled_p99:.1f} ms"
                    )
            console.print(lat)
        budgets: list[tuple[str, str, Throughput]] = []
        for kind in databases:
            empty = empties.get(kind)
            if empty is not None:
                budgets.append((kind, "empty", empty))
                table.add_row(
                    kind, "empty", f"{empty.rate:,.0f}", f"{roof:,.0f}", f"{empty.rate / roof:.3f}x",
                    f"{empty.cpu_us:,.0f}", "", str(empty.duplicates),
                    f">= {GOALS['rate']:,.0f}/s, >= {GOALS['ratio']}x, <= {GOALS['cpu_us']:.0f} µs",
                )  # fmt: skip
            if "history" in cases:
                full = throughput(case, kind, args.commands, history=args.history_per_hub)
                versus = f"{empty.rate / full.rate:.2f}x slower" if empty else ""
                table.add_row(
                    kind, f"{args.history_per_hub:,}/hub", f"{full.rate:,.0f}", f"{roof:,.0f}",
                    f"{full.rate / roof:.3f}x", f"{full.cpu_us:,.0f}", versus,
                    str(full.duplicates), f"<= {GOALS['history']:.2f}x the empty hub",
                )  # fmt: skip
                console.print(f"{kind} history: {full}")
                budgets.append((kind, f"{args.history_per_hub:,}/hub", full))
        console.print(table)
        if budgets:
            console.print(budget_table(budgets))
        if "processes" in cases:
            scale = Table(title="processes in one consumer group (PostgreSQL, 6 partitions)")
            for column in ("processes", "decisions/s", "vs 1 process", "ceiling/s"):
                scale.add_column(column, justify="right")
            one = None
            for count in (1, 2, 3):
                together = processes(case, count, args.commands)
                one = one or together
                scale.add_row(
                    str(count), f"{together:,.0f}", f"{together / one:.2f}x", f"{roof:,.0f}"
                )
                console.print(f"{count} processes: {together:,.0f}/s")
            console.print(scale)
        console.print(f"cores on this machine: {os.cpu_count()}")


if __name__ == "__main__":
    main()
