"""What one booking decision costs in CPU, without Kafka: the commands consumer's own
batch path (decode, inbox claims, the batch decision, answers kept, outbox rows written,
one commit) on SQLite or PostgreSQL, fed records of the throughput bench's workload in
batches as the broker would hand them over.

    python -m bench.booking_decide                      # SQLite and PostgreSQL
    python -m bench.booking_decide --profile /tmp/decide.prof --databases sqlite
    python -m bench.booking_decide --gc served      # only as `microhub serve` runs

Each database is measured twice: with CPython's collector as it comes, and as `microhub
serve` runs it after start-up (services/runtime/gc_tuning.py: start-up frozen, young
objects collected every MICROHUB_GC_GEN0_THRESHOLD allocations).

It isolates the service's own work from the broker's and the relay's (which
bench.booking_throughput measures with them), so that a change to the decision path can
be measured in CPU µs per decision on a shared machine, and profiled with cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import cpu_budget, servers
from bench.booking_throughput import catalogue, command, first_monday, hub_ids
from services.booking.service import BookingService
from services.runtime import gc_tuning
from services.runtime.settings import Settings

console = Console(width=120)


@dataclass
class Record:
    """What the consumer reads of an aiokafka ConsumerRecord."""

    value: bytes
    key: bytes
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int = 0


class CollectorTime:
    """Time the collector spent (gc.callbacks) while a measurement is on."""

    def __init__(self) -> None:
        self.on = False
        self.measured = 0.0
        self._started = 0.0

    def reset(self) -> None:
        self.on, self.measured = False, 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        elif self.on:
            self.measured += time.process_time() - self._started


COLLECTING = CollectorTime()  # in gc.callbacks while main() runs


def collector(kind: str) -> None:
    """``cpython``: the collector as CPython starts it; ``served``: as `microhub serve`
    leaves it after start-up."""
    gc.unfreeze()
    if kind == "served":
        gc_tuning.settle(Settings().gc_gen0_threshold)
    else:
        gc.set_threshold(gc_tuning.DEFAULT_GEN0_THRESHOLD, 10, 10)


def rss_mib() -> float:
    """The process's resident memory now (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Decided:
    """CPU µs per decision: the service's (process time, its one thread plus its
    database driver's) and PostgreSQL's (its processes on this machine, from /proc: 0 on
    SQLite, whose work is the service's); the growth of resident memory (MiB)."""

    service_us: float
    postgres_us: float
    grown_mib: float


async def decide(
    url: str, commands: int, batch: int, profile: cProfile.Profile | None, gc_kind: str = "served"
) -> Decided:
    """What ``commands`` requests decided in batches of ``batch`` cost."""
    with tempfile.TemporaryDirectory() as tmp:
        hubs = hub_ids()
        settings = Settings(
            kafka_bootstrap_servers="127.0.0.1:9",  # never contacted
            data_dir=Path(tmp),
            hubs_file=catalogue(Path(tmp) / "hubs.yaml", hubs),
            max_clock_skew_seconds=0,
        )
        service = BookingService(settings, settings.bootstrap_list(), database_url=url)
        await service.migrate()
        await service.load_hubs(settings.hubs_file)
        consumer = service.consumers[0]
        # no relay runs here: publishing after a commit would wait for one to take over
        consumer.after_commit = lambda: None
        now = first_monday()
        records = [
            Record(raw, hub.encode(), consumer.topic, i % 6, i, int(now.timestamp() * 1000))
            for i, (hub, raw) in enumerate(command(i, hubs, "d", now) for i in range(commands))
        ]
        # a first batch outside the measurement: caches, prepared statements, the catalogue
        await consumer.process_batch(records[:batch])
        collector(gc_kind)  # the service is up: as `microhub serve` does here
        memory = rss_mib()
        COLLECTING.on = True
        machine = cpu_budget.sample(os.getpid())
        start = time.process_time()
        if profile:
            profile.enable()
        for first in range(batch, commands, batch):
            await consumer.process_batch(records[first : first + batch])
        if profile:
            profile.disable()
        spent = time.process_time() - start
        used = cpu_budget.budget(machine, cpu_budget.sample(os.getpid()), commands - batch)
        COLLECTING.on = False
        grown = rss_mib() - memory
        await service.engine.dispose()
        return Decided(spent / (commands - batch) * 1e6, used.postgres_us, grown)


async def on_postgres(
    admin: str, commands: int, batch: int, profile: cProfile.Profile | None, gc_kind: str
) -> Decided:
    async with servers.scratch_database(admin) as url:
        return await decide(url, commands, batch, profile, gc_kind)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=10_500)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--gc", nargs="+", default=["cpython", "served"], dest="collectors")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the decisions here")
    args = parser.parse_args(argv)
    table = Table(title=f"booking decisions without Kafka, batches of {args.batch}")
    for column in (
        "database", "collector", "decisions", "CPU µs/decision", "of it collecting",
        "PostgreSQL µs/decision", "RSS grown MiB",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    profile = cProfile.Profile() if args.profile else None
    collecting = COLLECTING
    gc.callbacks.append(collecting)
    for kind in args.databases:
        for gc_kind in args.collectors:
            with tempfile.TemporaryDirectory() as tmp:
                collecting.reset()
                if kind == "sqlite":
                    url = f"sqlite:///{tmp}/booking.db"
                    run = decide(url, args.commands, args.batch, profile, gc_kind)
                    cost = asyncio.run(run)
                else:
                    with servers.postgres() as admin:
                        run = on_postgres(admin, args.commands, args.batch, profile, gc_kind)
                        cost = asyncio.run(run)
            decided = args.commands - args.batch
            table.add_row(
                kind, gc_kind, f"{decided:,}", f"{cost.service_us:,.0f}",
                f"{collecting.measured / decided * 1e6:,.0f}",
                f"{cost.postgres_us:,.0f}" if kind == "postgresql" else "-",
                f"{cost.grown_mib:,.1f}",
            )  # fmt: skip
    console.print(table)
    if profile and args.profile:
        profile.dump_stats(args.profile)
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
