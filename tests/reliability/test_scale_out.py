"""Booking scales by partitions, and a crashed instance loses and repeats nothing.

Two, then three `microhub serve booking` processes in one consumer group on a real Apache
Kafka (6 partitions) and one PostgreSQL database decide a burst of 5 000 commands for 12
hubs spread over every partition. Mid-burst a third instance joins (a real rebalance),
then the instance holding the most partitions is SIGKILLed (no commit, no goodbye: its
partitions move after the session timeout, and the survivors redo what it had not
committed). Every command gets exactly one outcome, no event is published twice, no
booking exists twice and no slot is over capacity.

The faults overlap the work: each happens while outcomes are still missing (the crash
while the second half is still streaming in), and only once the group says the
instances involved really hold partitions.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import func, select

from services.booking import store
from services.runtime.db import make_engine
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, monday_after
from tests.support.groups import Group, describe_group, lag
from tests.support.hubs import hub_config, write_catalogue
from tests.support.kafka import KafkaUnderTest, create_topics
from tests.support.processes import ServeProcess, clean_env
from tests.support.waiting import eventually

TOTAL = 5000
PARTITIONS = 6
SLOTS = 10
WINDOW = 400  # commands sent ahead of their outcomes in the streamed second half
CHUNK = 100
DOCKS = 20  # per slot: 12 hubs x 10 slots x 20 docks = 2 400 of 5 000 confirmed


def hubs_on_every_partition(per_partition: int = 2) -> list[str]:
    """Hub ids whose records land on each of the 6 partitions (the producers' default
    partitioner), ``per_partition`` of each."""
    partitioner = DefaultPartitioner()
    chosen: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for n in range(1000):
        hub_id = f"hub-{n:03d}"
        partition = partitioner(hub_id.encode(), list(range(PARTITIONS)), None)
        if len(chosen[partition]) < per_partition:
            chosen[partition].append(hub_id)
        if all(len(h) == per_partition for h in chosen.values()):
            return sorted(h for hubs in chosen.values() for h in hubs)
    raise AssertionError("no hub ids cover every partition")


async def test_instances_join_and_crash_mid_burst_and_every_command_gets_one_outcome(
    real_settings: Settings,
    real_kafka: KafkaUnderTest,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    await create_topics(real_settings)
    hub_ids = hubs_on_every_partition()
    catalogue = write_catalogue(
        tmp_path / "hubs.yaml",
        *(hub_config(id=h, docks_per_slot=DOCKS, volume_per_slot_m3=500) for h in hub_ids),
    )
    bootstrap = real_settings.bootstrap_list()
    prefix = real_settings.kafka_topic_prefix
    group_id = real_settings.group("booking")

    def instance(name: str) -> ServeProcess:
        env = clean_env(
            kafka_bootstrap_servers=real_kafka.bootstrap_string,
            kafka_topic_prefix=prefix,
            kafka_client_id=name,  # the group's member list tells the instances apart
            database_urls__booking=postgres_url,
            hubs_file=str(catalogue),
            data_dir=str(tmp_path / name),
            http_port="0",
            health_port="0",
            sweep_interval_seconds="3600",
            max_clock_skew_seconds="0",  # simulated time: next week's slots
        )
        return ServeProcess("booking", env, tmp_path / f"{name}.log")

    def member(name: str) -> str:
        return f"{name}-booking"  # FastStream's client id: <MICROHUB_KAFKA_CLIENT_ID>-booking

    async def group_is(names: set[str], what: str) -> Group:
        seen: list[Group] = []

        async def stable() -> bool:
            seen.append(await describe_group(bootstrap, group_id))
            return seen[-1].stable_with({member(n) for n in names})

        await eventually(stable, timeout=60, interval=0.2, what=what, describe=lambda: seen[-1])
        return seen[-1]

    now = monday_after(datetime.now(UTC)) + timedelta(hours=5)
    slot0 = now + timedelta(days=1, hours=3)
    instances = {name: instance(name) for name in ("booking-a", "booking-b", "booking-c")}
    try:
        for name in ("booking-a", "booking-b"):
            await instances[name].start()
        await group_is({"booking-a", "booking-b"}, "two instances sharing the partitions")

        async with (
            Carrier(bootstrap, prefix=prefix) as carrier,
            TopicReader(bootstrap, real_settings.topic("microhub.booking.events.v1")) as outcomes,
        ):

            async def send(first: int, count: int) -> None:
                await carrier.spread(
                    first, count, hub_ids=hub_ids, first_slot=slot0, time=now, slots=SLOTS
                )

            def decided() -> int:
                return len(outcomes.by_reference())

            await send(0, TOTAL // 2)
            await outcomes.wait_for(lambda _: decided() >= 300, timeout=60, what="300 outcomes")

            # a third instance joins mid-burst: a real rebalance over three members
            await instances["booking-c"].start()
            three = await group_is(
                {"booking-a", "booking-b", "booking-c"}, "three instances sharing the partitions"
            )
            decided_when_joined = decided()

            # the second half streams in, never more than WINDOW commands ahead of their
            # outcomes: deciding a batch takes milliseconds, so a burst sent at once
            # would be decided before the crash below could hit it
            sent = TOTAL // 2

            async def stream() -> None:
                nonlocal sent
                while sent < TOTAL:
                    floor = sent - WINDOW
                    await outcomes.wait_for(
                        lambda _, floor=floor: decided() >= floor, timeout=120, what="the window"
                    )
                    chunk = min(CHUNK, TOTAL - sent)
                    await send(sent, chunk)
                    sent += chunk

            streaming = asyncio.create_task(stream())
            await outcomes.wait_for(
                lambda _: decided() >= decided_when_joined + 300, timeout=60, what="more outcomes"
            )

            # the instance holding the most partitions crashes, commands still arriving
            victim = max(instances, key=lambda n: len(three.members.get(member(n), ())))
            held = three.members[member(victim)]
            await instances[victim].kill()
            decided_when_killed, sent_when_killed = decided(), sent
            survivors = set(instances) - {victim}
            after = await group_is(survivors, "the survivors taking over the crashed one's share")
            assert held <= set().union(*after.members.values())

            await streaming
            await outcomes.wait_for(
                lambda _: decided() >= TOTAL, timeout=180, what=f"{TOTAL} outcomes"
            )
            # everything decided is committed: the group's lag is zero, nothing is in flight
            commands = real_settings.topic("microhub.booking.commands.v1")

            async def nothing_left() -> bool:
                return await lag(bootstrap, group_id, commands) == 0

            await eventually(nothing_left, timeout=60, what="the group's lag to reach zero")
            await eventually(outcomes.at_end, what="the reader at the topic's end")
            events = outcomes.events
            by_ref = outcomes.by_reference()
        for survivor in survivors:
            assert instances[survivor].alive, instances[survivor].log.read_text()[-2000:]
    finally:
        for process in instances.values():
            await process.kill()

    # the faults overlapped the work
    assert 300 <= decided_when_joined < TOTAL // 2 + 300
    # the crash came while outcomes were missing and commands were still to come: the
    # survivors decided what arrived after it (decided may equal sent at that instant)
    assert decided_when_killed <= sent_when_killed < TOTAL
    assert len(held) >= 2

    # exactly one outcome per command, no event twice
    assert len(by_ref) == TOTAL
    assert {ref: len(ev) for ref, ev in by_ref.items() if len(ev) != 1} == {}
    assert len({e["id"] for e in events}) == len(events)
    confirmed = [e for e in events if e["type"].endswith("booking.confirmed.v1")]
    assert len(confirmed) == len(hub_ids) * SLOTS * DOCKS

    # the database agrees: no booking twice, no slot over capacity, usage = live bookings
    engine = make_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            statuses = dict(
                (
                    await conn.execute(
                        select(store.bookings.c.status, func.count()).group_by(
                            store.bookings.c.status
                        )
                    )
                ).all()
            )
            usage = (await conn.execute(select(store.slot_usage))).all()
    finally:
        await engine.dispose()
    assert sum(statuses.values()) == TOTAL  # one row per (carrier, reference), decided once
    assert statuses["confirmed"] == len(confirmed)
    assert all(0 <= u.docks_used <= DOCKS for u in usage)
    assert sum(u.docks_used for u in usage) == len(confirmed)
