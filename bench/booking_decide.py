"""What one booking decision costs in CPU, without Kafka: the commands consumer's own
batch path (decode, inbox claims, the batch decision, answers kept, outbox rows written,
one commit) on SQLite or PostgreSQL, fed records of the throughput bench's workload in
batches as the broker would hand them over.

    python -m bench.booking_decide                      # SQLite and PostgreSQL
    python -m bench.booking_decide --profile /tmp/decide.prof --databases sqlite

It isolates the service's own work from the broker's and the relay's (which
bench.booking_throughput measures with them), so that a change to the decision path can
be measured in CPU µs per decision on a shared machine, and profiled with cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from bench import servers
from bench.booking_throughput import _pg, catalogue, command, first_monday, hub_ids
from services.booking.service import BookingService
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


async def decide(url: str, commands: int, batch: int, profile: cProfile.Profile | None) -> float:
    """CPU µs per decision (process time, the service's one thread plus its database
    driver's) for ``commands`` requests decided in batches of ``batch``."""
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
        now = first_monday()
        records = [
            Record(raw, hub.encode(), consumer.topic, i % 6, i, int(now.timestamp() * 1000))
            for i, (hub, raw) in enumerate(command(i, hubs, "d", now) for i in range(commands))
        ]
        # a first batch outside the measurement: caches, prepared statements, the catalogue
        await consumer.process_batch(records[:batch])
        start = time.process_time()
        if profile:
            profile.enable()
        for first in range(batch, commands, batch):
            await consumer.process_batch(records[first : first + batch])
        if profile:
            profile.disable()
        spent = time.process_time() - start
        await service.engine.dispose()
        return spent / (commands - batch) * 1e6


async def on_postgres(
    admin: str, commands: int, batch: int, profile: cProfile.Profile | None
) -> float:
    server = make_url(admin).set(drivername="postgresql")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    await _pg(server.render_as_string(False), f'CREATE DATABASE "{name}"')
    try:
        url = server.set(database=name).render_as_string(False)
        return await decide(url, commands, batch, profile)
    finally:
        await _pg(server.render_as_string(False), f'DROP DATABASE "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=10_500)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--profile", type=Path, help="write a cProfile of the decisions here")
    args = parser.parse_args(argv)
    table = Table(title=f"booking decisions without Kafka, batches of {args.batch}")
    for column in ("database", "decisions", "CPU µs/decision"):
        table.add_column(column, justify="right")
    profile = cProfile.Profile() if args.profile else None
    for kind in args.databases:
        with tempfile.TemporaryDirectory() as tmp:
            if kind == "sqlite":
                url = f"sqlite:///{tmp}/booking.db"
                cpu = asyncio.run(decide(url, args.commands, args.batch, profile))
            else:
                with servers.postgres() as admin:
                    cpu = asyncio.run(on_postgres(admin, args.commands, args.batch, profile))
        table.add_row(kind, f"{args.commands - args.batch:,}", f"{cpu:,.0f}")
    console.print(table)
    if profile and args.profile:
        profile.dump_stats(args.profile)
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
