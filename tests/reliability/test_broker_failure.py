"""A three-node Apache Kafka cluster (replication 3, min.insync.replicas 2) loses the
broker that leads the most commands partitions — SIGKILL, mid-burst — and gets it back
later. Booking, dispatch and reporting run as `microhub serve` processes on PostgreSQL
throughout: nothing is lost, nothing is duplicated, and no service is restarted.

The failure overlaps the work: the broker dies while outcomes are still missing, and a
second burst is sent while it is dead; the services decide it on the two survivors.
After the broker is back and in sync, a third burst shows the cluster whole again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from services.runtime.apache_kafka import ApacheKafka
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, monday_after
from tests.support.groups import lag
from tests.support.hubs import hub_config, write_catalogue
from tests.support.kafka import create_topics
from tests.support.processes import ServeProcess, clean_env
from tests.support.waiting import eventually

BURST = 1000
HUBS = [f"hub-{n}" for n in range(8)]


async def partitions_of(bootstrap: list[str], topic: str) -> list[dict]:
    """The topic's partitions as the cluster describes them (leader, replicas, ISR)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return described["partitions"]


async def leaders(bootstrap: list[str], topic: str) -> dict[int, int]:
    """partition -> the node id leading it."""
    return {p["partition"]: p["leader"] for p in await partitions_of(bootstrap, topic)}


async def in_sync_replicas(bootstrap: list[str], topic: str) -> set[int]:
    return {len(p["isr"]) for p in await partitions_of(bootstrap, topic)}


async def test_the_leading_broker_dies_under_load_and_nothing_is_lost_or_repeated(
    apache_three_nodes: ApacheKafka,
    settings: Settings,
    postgres_server,
    tmp_path: Path,
) -> None:
    cluster = apache_three_nodes
    bootstrap = cluster.bootstrap_servers
    cluster_settings = settings.model_copy(update={"kafka_bootstrap_servers": ",".join(bootstrap)})
    await create_topics(cluster_settings)
    prefix = cluster_settings.kafka_topic_prefix
    commands = cluster_settings.topic("microhub.booking.commands.v1")
    booking_events = cluster_settings.topic("microhub.booking.events.v1")
    catalogue = write_catalogue(
        tmp_path / "hubs.yaml",
        *(hub_config(id=h, docks_per_slot=30, volume_per_slot_m3=500) for h in HUBS),
    )
    databases = {
        s: await postgres_server.create_database() for s in ("booking", "dispatch", "reporting")
    }
    env = clean_env(
        kafka_bootstrap_servers=",".join(bootstrap),
        kafka_topic_prefix=prefix,
        hubs_file=str(catalogue),
        data_dir=str(tmp_path / "data"),
        http_port="0",
        health_port="0",
        sweep_interval_seconds="3600",
        dispatch_wave_nudge_seconds="0",
        dispatch_solver_time_limit_seconds="0",
        max_clock_skew_seconds="0",  # simulated time: next week's slots
        **{f"database_urls__{s}": postgres_server.url_for(d) for s, d in databases.items()},
    )
    services = {
        name: ServeProcess(name, env, tmp_path / f"{name}.log")
        for name in ("booking", "dispatch", "reporting")
    }
    now = monday_after(datetime.now(UTC)) + timedelta(hours=5)
    slot0 = now + timedelta(days=1, hours=3)
    try:
        for service in services.values():
            await service.start()
        pids = {name: s.process.pid for name, s in services.items()}  # type: ignore[union-attr]

        async with (
            Carrier(bootstrap, prefix=prefix) as carrier,
            TopicReader(bootstrap, booking_events) as outcomes,
        ):

            async def send(first: int, count: int) -> None:
                await carrier.spread(
                    first, count, hub_ids=HUBS, first_slot=slot0, time=now, slots=10
                )

            def decided() -> int:
                return len(outcomes.by_reference())

            await send(0, BURST)
            await outcomes.wait_for(lambda _: decided() >= 100, timeout=60, what="100 outcomes")

            led = await leaders(bootstrap, commands)
            victim = max({1, 2, 3}, key=lambda n: sum(1 for leader in led.values() if leader == n))
            cluster.kill(victim)
            decided_when_killed = decided()
            # the second burst while the broker is dead: leaders move to the survivors
            await send(BURST, BURST)
            await outcomes.wait_for(
                lambda _: decided() >= 2 * BURST, timeout=180, what=f"{2 * BURST} outcomes"
            )
            moved = await leaders(bootstrap, commands)
            assert victim not in moved.values()

            cluster.start_node(victim)

            async def back_in_sync() -> bool:
                started = cluster.broker(victim).started()
                return started and await in_sync_replicas(bootstrap, commands) == {3}

            await eventually(
                back_in_sync,
                timeout=120,
                interval=0.5,
                what=f"node {victim} back in every commands partition's ISR",
            )
            await send(2 * BURST, BURST)
            await outcomes.wait_for(
                lambda _: decided() >= 3 * BURST, timeout=120, what=f"{3 * BURST} outcomes"
            )

            async def everyone_caught_up() -> bool:
                lags = [
                    await lag(bootstrap, cluster_settings.group("booking"), commands),
                    await lag(
                        bootstrap, cluster_settings.group("dispatch-bookings"), booking_events
                    ),
                    await lag(
                        bootstrap, cluster_settings.group("reporting-bookings"), booking_events
                    ),
                ]
                return lags == [0, 0, 0]

            await eventually(everyone_caught_up, timeout=120, interval=0.5, what="zero lag")
            await eventually(outcomes.at_end, what="the reader at the topic's end")
            events = outcomes.events
            by_ref = outcomes.by_reference()

        # no service was restarted: the same processes, alive, did all of it
        for name, service in services.items():
            assert service.alive and service.process.pid == pids[name], service.log.read_text()[
                -3000:
            ]  # type: ignore[union-attr]
    finally:
        for service in services.values():
            await service.kill()
        for database in databases.values():
            await postgres_server.drop_database(database)

    assert 100 <= decided_when_killed < BURST + 100
    assert len(by_ref) == 3 * BURST
    assert {ref: len(ev) for ref, ev in by_ref.items() if len(ev) != 1} == {}
    assert len({e["id"] for e in events}) == len(events)
