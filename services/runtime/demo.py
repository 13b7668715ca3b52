"""`microhub demo`: the platform on its embedded defaults, driven over Kafka by carriers'
systems that speak only the published contracts.

(The full city simulation with vehicles and telemetry grows in services/simulation.)
"""

from __future__ import annotations

import asyncio
import random
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from contracts.booking import BookingRequested, CheckInReported, Consignment, DeliveryStop
from contracts.common import GeoPoint
from contracts.envelope import decode, encode, new_event
from contracts.topics import BOOKING_COMMANDS, BOOKING_EVENTS
from services.booking import domain
from services.booking.catalogue import load_catalogue
from services.runtime.platform import Platform
from services.runtime.settings import Settings

CARRIERS = ("parcelco", "swiftpost", "nordfrakt")


def _consignment(rng: random.Random, hub: domain.HubConfig) -> Consignment:
    stops = []
    for i in range(rng.randint(3, 12)):
        stops.append(
            DeliveryStop(
                stop_id=f"s{i}",
                location=GeoPoint(
                    lat=round(hub.location.lat + rng.uniform(-0.03, 0.03), 5),
                    lon=round(hub.location.lon + rng.uniform(-0.05, 0.05), 5),
                ),
                parcels=rng.randint(1, 4),
            )
        )
    parcels = sum(s.parcels for s in stops)
    depot = GeoPoint(lat=round(hub.location.lat - 0.15, 5), lon=round(hub.location.lon - 0.2, 5))
    return Consignment(
        parcel_count=parcels,
        weight_kg=round(parcels * rng.uniform(2.0, 6.0), 1),
        volume_m3=round(parcels * rng.uniform(0.02, 0.08), 3),
        stops=stops,
        depot=depot,
    )


async def run_demo(
    settings: Settings, *, days: int, seed: int, serve: bool, console: Console
) -> int:
    data_dir = settings.data_dir / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    # Simulated time runs ahead of the wall clock: timers that nudge by wall time are off.
    settings = settings.model_copy(
        update={"data_dir": data_dir, "sweep_interval_seconds": 0, "dispatch_wave_nudge_seconds": 0}
        if hasattr(settings, "dispatch_wave_nudge_seconds")
        else {"data_dir": data_dir, "sweep_interval_seconds": 0}
    )
    console.print("[bold]microhub demo[/]: starting embedded Kafka, services and HTTP …")
    platform = await Platform(settings).start()
    console.print(
        f"  services: {', '.join(platform.services)}; HTTP at [link]{platform.base_url}[/]"
    )
    rng = random.Random(seed)
    hubs = load_catalogue(settings.hubs_file)
    # from the next Monday on: every sample hub is open, and all slots lie in the future
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today + timedelta(days=7 - today.weekday())
    bootstrap = platform.cluster.bootstrap
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    consumer = AIOKafkaConsumer(
        settings.topic(BOOKING_EVENTS.name),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    outcomes: Counter[str] = Counter()
    sent = 0

    async def send(payload, hub_id: str, time: datetime) -> None:
        nonlocal sent
        event = new_event(
            payload, source=f"carrier/{payload.carrier_id}", subject=hub_id, time=time
        )
        await producer.send(
            settings.topic(BOOKING_COMMANDS.name),
            encode(event),
            key=hub_id.encode(),
            timestamp_ms=int(time.timestamp() * 1000),
        )
        sent += 1

    try:
        with Progress(console=console, transient=False) as progress:
            task = progress.add_task("simulated days", total=days)
            for day_index in range(days):
                day = start + timedelta(days=day_index)
                for hub in hubs:
                    slots = domain.slots_on(hub, day.astimezone(hub.zone).date())
                    booked_at = day - timedelta(hours=10)
                    for slot in slots:
                        for _ in range(rng.randint(0, hub.docks_per_slot)):
                            carrier = rng.choice(CARRIERS)
                            ref = f"{hub.id}-{slot:%Y%m%d%H%M}-{rng.randrange(10**6):06d}"
                            request = BookingRequested(
                                carrier_id=carrier,
                                carrier_reference=ref,
                                hub_id=hub.id,
                                slot_start=slot,
                                consignment=_consignment(rng, hub),
                            )
                            await send(request, hub.id, booked_at)
                            if rng.random() < 0.9:
                                check_in = CheckInReported(
                                    carrier_id=carrier, carrier_reference=ref, hub_id=hub.id
                                )
                                await send(
                                    check_in, hub.id, slot + timedelta(minutes=rng.randint(0, 20))
                                )
                await producer.flush()
                progress.advance(task)
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and sum(outcomes.values()) >= sent:
                break
            for records in batch.values():
                for record in records:
                    outcomes[decode(record.value).type.split(".")[-2]] += 1
    finally:
        await consumer.stop()
        await producer.stop()

    table = Table(title=f"demo: {days} simulated day(s), seed {seed}")
    table.add_column("booking events")
    table.add_column("count", justify="right")
    for kind, count in sorted(outcomes.items()):
        table.add_row(kind, str(count))
    table.add_row("commands sent", str(sent))
    table.add_row("dead-lettered", str(sum(s.dead_lettered for s in platform.services.values())))
    console.print(table)
    if serve:
        from services.runtime.cli import _wait_for_signal, print_keys

        print_keys(settings)
        console.print(f"OpenAPI: {platform.base_url}/docs — Ctrl-C to stop")
        try:
            await _wait_for_signal()
        finally:
            await platform.stop()
    else:
        await platform.stop()
    return 0
