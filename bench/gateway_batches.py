"""CPU per batch of the gateway's egress and webhook sender, without Kafka or HTTP.

The gateway's egress handlers (booking's answers to forwarded commands, dispatch's routes
planned and completed) in a unit of work per batch, and its webhook sender's claim and
recording of outcomes, on SQLite or PostgreSQL.

    python -m bench.gateway_batches                          # PostgreSQL and SQLite
    python -m bench.gateway_batches --databases sqlite --batches 20

Every path is run once on a spare batch first (compiled statements, caches), then timed
with `time.process_time` over ``--batches`` batches (5 idle polls a batch), with the
collector as `microhub serve` leaves it after start-up (services/runtime/gc_tuning.py).
PostgreSQL is a throwaway cluster unless bench/servers.py finds one; SQLite a file in a
temporary directory.

The reference row is "10 routes planned (5 stops)": a path the gateway's prebuilt
statements did not touch (it inserts the route's stops, its outbox rows and webhook
deliveries as before), so in the same run it says how fast this machine is now, and
each row's ratio to it compares across runs on a shared machine better than milliseconds
do (docs/booking-throughput.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import servers
from contracts.carriers import forwarded_id, forwarded_source
from services.gateway import store
from services.gateway.handlers import GatewayHandlers, Subscriptions
from services.gateway.registry import Registry, upsert_carriers
from services.gateway.service import SPEC
from services.gateway.webhooks import BATCH, WebhookSender
from services.runtime import gc_tuning
from services.runtime.carriers import Carrier
from services.runtime.consumer import Delivery
from services.runtime.db import make_engine, make_sessionmaker
from services.runtime.settings import Settings
from services.runtime.uow import UnitsOfWork
from tests.support import reporting

console = Console(width=120)

ANSWERS = 50  # booking answers per egress batch
STOPS = 5  # stops per route, each a booking answered before
ROUTES = ANSWERS // STOPS  # routes per dispatch batch
IDLE_POLLS = 5  # idle polls per batch: one is too short to time alone
T0 = datetime(2026, 11, 30, 8, tzinfo=UTC)
CARRIER = "acme"
REFERENCE = f"egress: {ROUTES} routes planned ({STOPS} stops)"


@dataclass
class Path:
    name: str
    run: Callable[[int], Awaitable[None]]  # one batch, by its number
    per: int  # what a batch holds (answers, routes, deliveries, polls)
    unit: str


def _delivery(payload: Any, i: int, **extensions: str) -> Delivery:
    event = reporting.envelope(payload, time=T0 + timedelta(seconds=i))
    if extensions:
        event = event.model_copy(update=extensions)
    return Delivery(event, "bench", 0, i, None, None)


async def _seed(units: UnitsOfWork, answers: int) -> None:
    """The carrier, one webhook subscription to every type, and the forwarded commands
    booking's answers name."""
    async with units() as uow:
        session = uow.session
        await upsert_carriers(session, [Carrier(CARRIER, "Acme", True)], origin="file")
        subscription = {
            "id": "sub-1",
            "carrier_id": CARRIER,
            "url": "http://127.0.0.1:9/hook",  # never called: the sender is timed without HTTP
            "secret": "whsec_" + "A" * 44,
            "event_types": None,
            "active": 1,
            "created_at": T0,
            "updated_at": T0,
        }
        await session.execute(insert(store.webhook_subscriptions), [subscription])
        commands = [
            {
                "id": forwarded_id(CARRIER, f"carrier/{CARRIER}", f"c{i}"),
                "carrier_id": CARRIER,
                "command_id": f"c{i}",
                "command_source": f"carrier/{CARRIER}",
                "forwarded_at": T0,
            }
            for i in range(answers)
        ]
        await session.execute(insert(store.forwarded_commands), commands)


def _paths(engine: AsyncEngine, units: UnitsOfWork, batches: int) -> list[Path]:
    """The measured paths over ``batches + 1`` batches of events (one for the warm-up)."""
    handlers = GatewayHandlers(
        prefix="",
        receipt_time="broker",
        max_clock_skew=timedelta(0),
        registry=Registry(),
        subscriptions=Subscriptions(),
    )
    depot = (52.5, 13.3)
    confirmations = [
        reporting.confirmed(
            f"b{i}",
            carrier=CARRIER,
            depot=depot,
            stops=[(f"s{k}", depot, 1) for k in range(STOPS)],
            weight_kg=10,
            volume_m3=0.5,
        )
        for i in range((batches + 1) * ANSWERS)
    ]
    plans = [
        reporting.planned(
            f"r{i}",
            vehicle="e_cargo_bike",
            km=10,
            stops=[(b, "s0", 1.0) for b in confirmations[i : i + STOPS]],
        )
        for i in range(0, len(confirmations), STOPS)
    ]
    answers = [
        _delivery(
            c,
            i,
            causationid=forwarded_id(CARRIER, f"carrier/{CARRIER}", f"c{i}"),
            causationsource=forwarded_source(CARRIER),
        )
        for i, c in enumerate(confirmations)
    ]
    planned = [_delivery(p, i) for i, p in enumerate(plans)]
    completed = [
        _delivery(reporting.completed(p, at=T0, actual_km=10, energy_kwh=1), i)
        for i, p in enumerate(plans)
    ]

    def egress(events: list[Delivery], per: int, on: Callable[..., Awaitable[None]]) -> Any:
        async def batch(b: int) -> None:
            async with units(notify=False) as uow:
                for delivery in events[b * per : (b + 1) * per]:
                    await on(uow, delivery)

        return batch

    sender = WebhookSender(engine, retry_seconds=[1, 2], timeout=5, allow_private=True)
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)

    async def idle_poll(_b: int) -> None:
        for _ in range(IDLE_POLLS):
            if await sender._claim(long_ago):
                raise RuntimeError("the idle poll found a due delivery")

    async def sender_pass(_b: int) -> None:
        # an hour on: every delivery queued above is due, the retried ones again
        now = datetime.now(UTC) + timedelta(hours=1)
        due = await sender._claim(now)
        if len(due) != BATCH:
            raise RuntimeError(f"a pass claimed {len(due)} deliveries, not {BATCH}")
        # two in three answered 2xx, the third 500 (an attempt to retry)
        results = [(d, 200, None) if d.id % 3 else (d, 500, "HTTP 500") for d in due]
        await sender._record(results, leased_until=now + sender.lease)

    return [
        Path(
            f"egress: {ANSWERS} booking answers (forwarded)",
            egress(answers, ANSWERS, handlers.on_booking_event),
            ANSWERS,
            "answer",
        ),
        Path(REFERENCE, egress(planned, ROUTES, handlers.on_dispatch_event), ROUTES, "route"),
        Path(
            f"egress: {ROUTES} routes completed (known stops)",
            egress(completed, ROUTES, handlers.on_dispatch_event),
            ROUTES,
            "route",
        ),
        Path(f"webhooks: {IDLE_POLLS} idle polls", idle_poll, IDLE_POLLS, "poll"),
        Path(f"webhooks: a pass of {BATCH} (claim, outcomes)", sender_pass, BATCH, "delivery"),
    ]


async def measure(url: str, batches: int) -> list[tuple[Path, float, float]]:
    """(path, CPU s, wall s) over ``batches`` batches of each path, after a warm-up one."""
    engine = make_engine(url)
    try:
        await SPEC.migrate(engine)
        units = UnitsOfWork(
            make_sessionmaker(engine), source="microhub/gateway", outbox=store.outbox, topic=str
        )
        await _seed(units, (batches + 1) * ANSWERS)
        paths = _paths(engine, units, batches)
        gc_tuning.settle(Settings().gc_gen0_threshold)  # as `microhub serve` after start-up
        measured = []
        for path in paths:
            await path.run(batches)  # the spare batch: statements compiled, caches filled
            cpu, wall = time.process_time(), time.perf_counter()
            for b in range(batches):
                await path.run(b)
            measured.append((path, time.process_time() - cpu, time.perf_counter() - wall))
        return measured
    finally:
        await engine.dispose()


async def on_postgres(admin: str, batches: int) -> list[tuple[Path, float, float]]:
    async with servers.scratch_database(admin) as url:
        return await measure(url, batches)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Reference: the routes planned path, which the prebuilt statements left as "
        "it was; each row's CPU per batch is also given as a ratio to it.",
    )
    parser.add_argument(
        "--databases",
        default="postgresql,sqlite",
        help="comma-separated, of postgresql and sqlite (default: both)",
    )
    parser.add_argument(
        "--batches", type=int, default=40, help="timed batches per path (default: 40)"
    )
    args = parser.parse_args(argv)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = sorted(set(databases) - {"postgresql", "sqlite"})
    if unknown or not databases:
        parser.error(f"--databases: postgresql and/or sqlite, not {','.join(unknown) or '-'}")
    if args.batches < 1:
        parser.error("--batches: at least 1")
    # a warning per webhook failed for good would drown the table
    logging.getLogger("services.gateway.webhooks").setLevel(logging.ERROR)
    table = Table(title=f"the gateway's batches without Kafka or HTTP, {args.batches} each")
    for column in ("database", "path", "CPU ms/batch", "CPU µs per", "wall ms/batch"):
        table.add_column(column, justify="left" if column == "path" else "right")
    table.add_column("÷ reference", justify="right")
    for kind in databases:
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                rows = asyncio.run(measure(f"sqlite:///{tmp}/gateway.db", args.batches))
        else:
            with servers.postgres() as admin:
                rows = asyncio.run(on_postgres(admin, args.batches))
        reference = next(cpu for path, cpu, _ in rows if path.name == REFERENCE)
        for path, cpu, wall in rows:
            per_batch = cpu / args.batches
            table.add_row(
                kind,
                path.name,
                f"{per_batch * 1e3:,.2f}",
                f"{per_batch / path.per * 1e6:,.0f} /{path.unit}",
                f"{wall / args.batches * 1e3:,.2f}",
                f"{cpu / reference:.2f}",
            )
        table.add_section()
    console.print(table)


if __name__ == "__main__":
    main()
