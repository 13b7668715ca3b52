"""CPU of the outbox relay per published record: a pass as one batch against record by
record, on a real Kafka and PostgreSQL (or SQLite).

    python -m bench.relay_publish                       # PostgreSQL, 3 rounds of 4 000 rows
    python -m bench.relay_publish --databases sqlite,postgresql --rows 2000 --rounds 2

Each round fills the outbox (not timed) and then times, with `time.process_time` (the
whole process: the loop, librdkafka's threads and the report thread), the relay's passes
until the outbox is empty, for each way of publishing in turn (alternately, round after
round, so a busy minute on this shared machine hits both):

- batch: the service's path, ``RelayProducer.publish_outbox`` (one future per pass);
- per record: the same producer's ``send()`` per record and a gather of the futures, the
  relay's path before the batch form;
- no publish (reference): the pass without Kafka (reading and marking the rows), so the
  rows before it say what publishing adds on top of the database's part.

Then, on PostgreSQL, lone commits as a quiet hour brings them: ``--commits`` transactions
of one event each, 20 ms apart, through the relay's own engine, each followed by
``publish_now`` as a consumer's batch does before it acks; the relay runs (LISTENing).
CPU of the process per commit (the commit and publishing included) and the relay's
passes per commit, with the NOTIFY of the process's own commits ignored (now) and waking
the relay as before, alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import servers
from services.runtime import gc_tuning
from services.runtime.db import make_engine, make_sessionmaker
from services.runtime.messaging_tables import add_outbox
from services.runtime.outbox import OutboxRecord, PublishBatch, batch_over, enqueue_all
from services.runtime.outbox_relay import OutboxRelay
from services.runtime.outbox_wakeup import create_trigger_sql
from services.runtime.relay_producer import CLOUDEVENTS, RelayProducer
from services.runtime.settings import Settings

console = Console(width=120)

KEYS = 40  # hubs: spread over the topic's partitions
REFERENCE = "no publish (reference)"
SPACING = 0.02  # seconds between lone commits
IGNORED, WAKES = "own NOTIFY ignored", "own NOTIFY wakes (before)"


def _rows(topic: str, n: int) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "topic": topic,
            "key": f"hub-{i % KEYS}",
            "event_id": uuid.uuid4().hex,
            "event_type": "microhub.booking.booking_confirmed.v1",
            "payload": b'{"data": "' + b"x" * 560 + b'"}',
            "created_at": now,
            "attempts": 0,
        }
        for i in range(n)
    ]


def _ways(producer: RelayProducer) -> dict[str, PublishBatch]:
    async def per_record(topic: str, key: bytes, payload: bytes, headers: dict[str, str]):
        # the relay's send before the batch form (service.py's _publish then)
        record_headers: list[tuple[str, str | bytes | None]] = [("content-type", CLOUDEVENTS)]
        record_headers += [(name, value.encode()) for name, value in headers.items()]
        return await producer.send(topic, payload, key=key, headers=record_headers)

    async def no_publish(records: list[OutboxRecord]) -> list[BaseException | None]:
        return [None] * len(records)

    return {
        "batch": producer.publish_outbox,
        "per record": batch_over(per_record),
        REFERENCE: no_publish,
    }


async def measure(
    url: str, bootstrap: list[str], rows: int, rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """Per way: (CPU s, wall s) of each round's ``rows`` records."""
    engine: AsyncEngine = make_engine(url)
    outbox = add_outbox(MetaData())
    topic = await _topic(bootstrap)
    producer = RelayProducer(bootstrap, Settings(), client_id="bench")
    await producer.start()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(outbox.metadata.create_all)
        sessions = make_sessionmaker(engine)
        relays = {
            name: OutboxRelay(service="bench", engine=engine, outbox=outbox, publish_batch=way)
            for name, way in _ways(producer).items()
        }

        async def fill(n: int) -> None:
            async with sessions() as session, session.begin():
                for start in range(0, n, 500):
                    await enqueue_all(session, outbox, _rows(topic, min(500, n - start)))

        async def drain(relay: OutboxRelay) -> int:
            published = 0
            while sent := await relay.relay_once():
                published += sent
            return published

        for relay in relays.values():  # warm-up: statements compiled, producer connected
            await fill(400)
            await drain(relay)
        gc_tuning.settle(Settings().gc_gen0_threshold)  # as `microhub serve` after start-up
        measured: dict[str, list[tuple[float, float]]] = {name: [] for name in relays}
        for _ in range(rounds):
            for name, relay in relays.items():
                await fill(rows)
                cpu, wall = time.process_time(), time.perf_counter()
                published = await drain(relay)
                measured[name].append((time.process_time() - cpu, time.perf_counter() - wall))
                assert published == rows, (name, published)
        return measured
    finally:
        await producer.stop()
        await engine.dispose()


async def _topic(bootstrap: list[str]) -> str:
    topic = f"bench.relay.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    return topic


async def measure_lone(
    url: str, bootstrap: list[str], commits: int, rounds: int
) -> dict[str, list[tuple[float, int]]]:
    """Per variant: (CPU s, relay passes) of each round's ``commits`` lone commits."""
    engine = make_engine(url)
    outbox = add_outbox(MetaData())
    topic = await _topic(bootstrap)
    producer = RelayProducer(bootstrap, Settings(), client_id="bench")
    await producer.start()
    relay: OutboxRelay | None = None
    try:
        async with engine.begin() as conn:
            await conn.run_sync(outbox.metadata.create_all)
            for statement in create_trigger_sql("bench"):
                await conn.execute(text(statement))
        sessions = make_sessionmaker(engine)
        relay = OutboxRelay(
            service="bench", engine=engine, outbox=outbox, publish_batch=producer.publish_outbox
        )
        relay.start()
        for _ in range(200):  # the relay's first pass, then its LISTEN
            if relay.listener.listening:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the relay does not LISTEN")
        own = relay.listener._own_backends
        pids = own.pids

        async def commit_lone() -> None:
            async with sessions() as session, session.begin():
                await enqueue_all(session, outbox, _rows(topic, 1))
            await relay.publish_now(5.0)  # a consumer's batch, before it acks
            await asyncio.sleep(SPACING)

        for _ in range(20):  # warm-up: the pool's connections, statements compiled
            await commit_lone()
        gc_tuning.settle(Settings().gc_gen0_threshold)
        measured: dict[str, list[tuple[float, int]]] = {IGNORED: [], WAKES: []}
        for _ in range(rounds):
            for name in measured:
                # as before: no pid is the process's own, every NOTIFY wakes the relay
                own.pids = pids if name == IGNORED else set()
                passes, cpu = relay.passes, time.process_time()
                for _ in range(commits):
                    await commit_lone()
                measured[name].append((time.process_time() - cpu, relay.passes - passes))
        own.pids = pids
        await relay.flush()
        return measured
    finally:
        if relay is not None:
            await relay.stop()
        await producer.stop()
        await engine.dispose()


async def on_postgres(admin: str, run: Callable[[str], Awaitable[Any]]) -> Any:
    async with servers.scratch_database(admin) as url:
        return await run(url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Reference: the relay's passes without publishing (the database's part); "
        "each row's CPU per record is also given as a ratio to it.",
    )
    parser.add_argument(
        "--databases",
        default="postgresql",
        help="comma-separated, of postgresql and sqlite (default: postgresql)",
    )
    parser.add_argument("--rows", type=int, default=4000, help="records per round (4 000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating (3)")
    parser.add_argument(
        "--commits", type=int, default=200, help="lone commits per round, PostgreSQL (200; 0: none)"
    )
    args = parser.parse_args(argv)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = sorted(set(databases) - {"postgresql", "sqlite"})
    if unknown or not databases:
        parser.error(f"--databases: postgresql and/or sqlite, not {','.join(unknown) or '-'}")
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds: at least 1")
    logging.getLogger("services.runtime").setLevel(logging.ERROR)
    table = Table(title=f"the outbox relay, {args.rows} records a round, {args.rounds} rounds")
    for column in ("database", "publishing", "CPU µs/record", "each round", "wall µs/record"):
        table.add_column(column, justify="left" if column == "publishing" else "right")
    table.add_column("÷ reference", justify="right")
    with servers.kafka(say=lambda _line: None) as kafka:
        for kind in databases:
            if kind == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    url = f"sqlite:///{tmp}/relay.db"
                    measured = asyncio.run(measure(url, kafka.bootstrap, args.rows, args.rounds))
            else:
                with servers.postgres() as admin:
                    measured = asyncio.run(
                        on_postgres(
                            admin, lambda url: measure(url, kafka.bootstrap, args.rows, args.rounds)
                        )
                    )
            per = {
                name: [cpu / args.rows * 1e6 for cpu, _ in rounds]
                for name, rounds in measured.items()
            }
            reference = statistics.median(per[REFERENCE])
            for name, cpus in per.items():
                walls = [wall / args.rows * 1e6 for _, wall in measured[name]]
                cpu = statistics.median(cpus)
                table.add_row(
                    kind,
                    name,
                    f"{cpu:,.1f}",
                    ", ".join(f"{c:.0f}" for c in cpus),
                    f"{statistics.median(walls):,.1f}",
                    f"{cpu / reference:.2f}",
                )
            table.add_section()
        console.print(table)
        if "postgresql" not in databases or args.commits < 1:
            return
        with servers.postgres() as admin:
            lone = asyncio.run(
                on_postgres(
                    admin,
                    lambda url: measure_lone(url, kafka.bootstrap, args.commits, args.rounds),
                )
            )
    table = Table(title=f"lone commits on PostgreSQL, {args.commits} a round, 20 ms apart")
    for column in ("NOTIFY of the process's own commits", "CPU µs/commit", "each round"):
        table.add_column(column, justify="left" if column.startswith("NOTIFY") else "right")
    table.add_column("relay passes/commit", justify="right")
    for name, rounds in lone.items():
        cpus = [cpu / args.commits * 1e6 for cpu, _ in rounds]
        table.add_row(
            name,
            f"{statistics.median(cpus):,.0f}",
            ", ".join(f"{c:.0f}" for c in cpus),
            ", ".join(f"{passes / args.commits:.2f}" for _, passes in rounds),
        )
    console.print(table)


if __name__ == "__main__":
    main()
