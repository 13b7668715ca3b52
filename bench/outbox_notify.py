"""What waking the outbox relay by NOTIFY costs a transaction that enqueues events, on
PostgreSQL: the same batch of outbox rows inserted and committed (through the service's
own ``enqueue_all``) with no notification, with an explicit ``SELECT pg_notify(…)``
statement, and with a statement-level ``AFTER INSERT`` trigger that notifies. A session
LISTENs meanwhile, as the active relay does.

    nice -n 10 .venv/bin/python -m bench.outbox_notify [--batches 400] [--rows 1 50]

Prints, per variant and batch size, the wall time and the client (Python) CPU time per
committed batch, as the median of several interleaved rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bench import servers
from services.runtime.db import make_engine
from services.runtime.messaging_tables import add_outbox
from services.runtime.outbox import enqueue_all

CHANNEL = "microhub_outbox_bench"
TRIGGER = f"""
CREATE FUNCTION bench_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$;
"""
NOTIFY = text("SELECT pg_notify(:channel, '')")
VARIANTS = ("none", "pg_notify", "trigger")


def rows(n: int) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "topic": "bench",
            "key": f"hub-{i % 7}",
            "event_id": uuid.uuid4().hex,
            "event_type": "bench.v1",
            "payload": b"x" * 600,
            "created_at": now,
            "attempts": 0,
        }
        for i in range(n)
    ]


async def run_batches(engine: AsyncEngine, outbox, variant: str, n: int, batches: int):
    async with engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER IF EXISTS bench_notify ON outbox"))
        if variant == "trigger":
            await conn.execute(
                text(
                    "CREATE TRIGGER bench_notify AFTER INSERT ON outbox "
                    "FOR EACH STATEMENT EXECUTE FUNCTION bench_outbox_notify()"
                )
            )
    prepared = [rows(n) for _ in range(batches)]
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in prepared:
        async with AsyncSession(engine) as session, session.begin():
            await enqueue_all(session, outbox, batch)
            if variant == "pg_notify":
                await session.execute(NOTIFY, {"channel": CHANNEL})
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 1e6 * wall / batches, 1e6 * cpu / batches


async def main(url: str, batches: int, sizes: list[int], rounds: int) -> None:
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    name = f"bench_notify_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE DATABASE {name}")
    base = url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    engine = make_engine(f"{base}/{name}")
    outbox = add_outbox(MetaData())
    received = 0
    try:
        async with engine.begin() as conn:
            await conn.run_sync(outbox.metadata.create_all)
            await conn.execute(text(TRIGGER))
        listener = await asyncpg.connect(f"{url.rsplit('/', 1)[0]}/{name}")

        def heard(*_):
            nonlocal received
            received += 1

        await listener.add_listener(CHANNEL, heard)
        await run_batches(engine, outbox, "none", 1, 50)  # warm the pool and the caches
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for _ in range(rounds):
            for n in sizes:
                for variant in VARIANTS:
                    results.setdefault((variant, n), []).append(
                        await run_batches(engine, outbox, variant, n, batches)
                    )
        await listener.close()
        print(f"{batches} batches x {rounds} rounds; notifications received: {received}")
        print("rows  variant     wall µs/batch  client CPU µs/batch")
        for (variant, n), measured in results.items():
            w = statistics.median(m[0] for m in measured)
            c = statistics.median(m[1] for m in measured)
            print(f"{n:>4}  {variant:<10} {w:>13.0f}  {c:>19.0f}")
    finally:
        await engine.dispose()
        await admin.execute(f"DROP DATABASE {name}")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with servers.postgres() as url:
        asyncio.run(main(url, args.batches, args.rows, args.rounds))
