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
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import servers
from bench.booking_throughput import _pg
from services.runtime import gc_tuning
from services.runtime.db import make_engine, make_sessionmaker
from services.runtime.messaging_tables import add_outbox
from services.runtime.outbox import OutboxRecord, PublishBatch, batch_over, enqueue_all
from services.runtime.outbox_relay import OutboxRelay
from services.runtime.relay_producer import CLOUDEVENTS, RelayProducer
from services.runtime.settings import Settings

console = Console(width=120)

KEYS = 40  # hubs: spread over the topic's partitions
REFERENCE = "no publish (reference)"


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
    topic = f"bench.relay.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
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


async def on_postgres(admin: str, bootstrap: list[str], rows: int, rounds: int):
    server = make_url(admin).set(drivername="postgresql")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    await _pg(server.render_as_string(False), f'CREATE DATABASE "{name}"')
    try:
        url = server.set(database=name).render_as_string(False)
        return await measure(url, bootstrap, rows, rounds)
    finally:
        await _pg(server.render_as_string(False), f'DROP DATABASE "{name}" WITH (FORCE)')


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
                        on_postgres(admin, kafka.bootstrap, args.rows, args.rounds)
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


if __name__ == "__main__":
    main()
