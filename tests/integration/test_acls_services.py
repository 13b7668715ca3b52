"""Each service with exactly its ACLs (infra/acls.yaml), on Apache Kafka with SASL/SCRAM
and the StandardAuthorizer: booking, dispatch and reporting each run as their own
principal (as `microhub serve <service>` does: topics file applied on start, then the
consumers), the gateway and the HTTP API as theirs; a booking request travels from HTTP
through the carrier's own topic and the gateway to routes that reporting sees, every
consumer dead-letters a poison record, and the reporting rebuild replays the topics.
Then what the ACLs do not allow is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)

from contracts.fleet import VehicleStatus, VehicleStatusChanged
from contracts.topics import all_topic_names
from services.app.platform import Platform
from services.reporting.cli import rebuild_projection
from services.runtime.acl_admin import apply_acls
from services.runtime.carriers import (
    SAMPLE_CARRIERS_FILE,
    is_carrier_grant,
    load_carriers,
    principals,
)
from services.runtime.topic_admin import apply_topics, platform_topics
from tests.support.carrier import Carrier, TopicReader, consignment
from tests.support.dispatch import ALL_DAY, Publisher, write_fleet
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue
from tests.support.secured_kafka import INTRUDER, SecuredKafka
from tests.support.waiting import eventually

CARRIER_KEY = {"Authorization": "Bearer parcelco-key-for-acl-tests"}


@pytest.fixture(scope="module")
async def prefix(secured_kafka: SecuredKafka) -> str:
    """This module's environment: the file's ACLs applied, topics created by the
    migration principal (as the migration job does before the services start)."""
    prefix = secured_kafka.new_prefix()
    secured_kafka.apply(prefix)
    created = await apply_topics(
        secured_kafka.settings("migration", prefix), secured_kafka.bootstrap
    )
    assert len(created.created) == len(platform_topics(secured_kafka.settings("migration", prefix)))
    # `carriers apply`'s ACLs for the sample registry: the API writes carriers' commands
    carriers = apply_acls(
        secured_kafka.settings("admin", prefix),
        secured_kafka.bootstrap,
        principals=principals(load_carriers(SAMPLE_CARRIERS_FILE)),
        scope=lambda grant: is_carrier_grant(grant, prefix),
    )
    assert carriers.created
    return prefix


def write_keys(path: Path) -> Path:
    key = CARRIER_KEY["Authorization"].removeprefix("Bearer ")
    path.write_text(f"keys:\n  - {{key: {key}, scope: 'carrier:parcelco', name: ParcelCo}}\n")
    return path


def next_slot(now: datetime) -> datetime:
    """The next full hour (the test hub is open all day, in UTC) but not 23:00, whose
    slot would end at midnight, past the last opening time; at most 2 h ahead, so
    check-in is already open."""
    slot = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return slot + timedelta(hours=1) if slot.hour == 23 else slot


@pytest.fixture
async def platforms(
    secured_kafka: SecuredKafka, prefix: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    started: list[Platform] = []
    hub = hub_config(
        opening_hours={day: ["00:00-23:59"] for day in ALL_DAY},
        city={"id": "testcity", "name": "Test City", "country": "DE", "timezone": "UTC"},
    )
    shared = {
        "data_dir": tmp_path,
        # the API process answers from the services' databases, as in a deployment
        "database_urls": {
            name: f"sqlite+aiosqlite:///{tmp_path / name}.db"
            for name in ("booking", "dispatch", "reporting", "gateway")
        },
        "hubs_file": write_catalogue(tmp_path / "hubs.yaml", hub),
        "api_keys_file": write_keys(tmp_path / "api-keys.yaml"),
        "fleet_file": write_fleet(tmp_path / "fleet.yaml"),
        "dispatch_wave_min_stops": 2,
        "dispatch_solver_time_limit_seconds": 0.3,
        "dispatch_solver_in_subprocess": False,
        "dispatch_wave_nudge_seconds": 0,
        "http_port": 0,
    }

    async def start(principal: str, **kwargs: Any) -> Platform:
        platform = Platform(secured_kafka.settings(principal, prefix, **shared), **kwargs)
        await platform.start()
        started.append(platform)
        return platform

    yield start
    for platform in reversed(started):
        await platform.stop()


async def test_each_service_works_with_exactly_its_acls(
    secured_kafka: SecuredKafka, prefix: str, platforms: Callable[..., Any], tmp_path: Path
) -> None:
    # `serve booking`, `serve dispatch`, `serve reporting`: each its own principal
    booking = (await platforms("booking", services=["booking"], http=False)).services["booking"]
    dispatch = (await platforms("dispatch", services=["dispatch"], http=False)).services["dispatch"]
    reporting_platform = await platforms("reporting", services=["reporting"], http=False)
    reporting = reporting_platform.services["reporting"]
    gateway = (await platforms("gateway", services=["gateway"], http=False)).services["gateway"]
    # `serve api`: every service's routes, no consumers
    api = await platforms("api", consuming=False)
    admin = secured_kafka.security("admin", prefix)  # the test's own eyes on the topics
    topic = secured_kafka.settings("admin", prefix).topic

    async with (
        httpx.AsyncClient(base_url=api.base_url, headers=CARRIER_KEY, timeout=30) as http,
        TopicReader(
            secured_kafka.bootstrap, topic("microhub.dispatch.events.v1"), security=admin
        ) as routes,
    ):
        # a carrier books over HTTP: the API principal writes the command onto the
        # carrier's topic, the gateway forwards it, booking reads it and publishes the
        # confirmation the API then finds in booking's database
        now = datetime.now(UTC)
        request = {
            "carrier_reference": "acl-1",
            "hub_id": TEST_HUB,
            "slot_start": next_slot(now).isoformat(),
            "consignment": consignment(parcels=4, stops=2, volume_m3=1.0),
        }
        booked = await http.post("/v1/bookings?wait=10", json=request)
        assert booked.status_code == 202, booked.text
        assert booked.json()["status"] == "confirmed", booked.text
        checked_in = await http.post(f"{booked.json()['location']}/check-in?wait=10")
        assert checked_in.json()["status"] == "checked_in", checked_in.text

        # dispatch read both booking events and planned a route through its outbox
        [planned] = await routes.wait_count(1, suffix="route_planned.v1", timeout=30)
        stops = planned["data"]["stops"]
        assert {s["booking_id"] for s in stops} == {booked.json()["booking_id"]}
        # a vehicle app (the fleet principal) reports the vehicle left: dispatch reads
        # the telemetry and starts the route
        fleet = secured_kafka.security("fleet", prefix)
        async with Publisher(secured_kafka.bootstrap, topic, security=fleet) as vehicles:
            await vehicles.send(
                VehicleStatusChanged(
                    vehicle_id=planned["data"]["vehicle_id"],
                    hub_id=TEST_HUB,
                    status=VehicleStatus.ON_ROUTE,
                    battery_pct=90,
                ),
                time=datetime.now(UTC),
            )
            [started] = await routes.wait_count(1, suffix="route_started.v1", timeout=30)
        assert started["data"]["route_id"] == planned["data"]["route_id"]

        # reporting read the booking events and both route events
        await eventually(
            lambda: reporting.consumer("reporting-bookings").stats.processed >= 2,
            what="reporting's booking events",
        )
        await eventually(
            lambda: reporting.consumer("reporting-dispatch").stats.processed >= 2,
            what="reporting's route events",
        )

    # every consumer may write its dead letters: one poison record on each input topic,
    # written by whoever may write there (the admin stands in for booking and dispatch)
    async with Carrier(
        secured_kafka.bootstrap, prefix=prefix, security=secured_kafka.security("gateway", prefix)
    ) as carrier:
        await carrier.send_raw(b"not json", key=TEST_HUB)
    async with Publisher(secured_kafka.bootstrap, topic, security=fleet) as vehicles:
        await vehicles.send_raw(b"not json", topic="microhub.fleet.telemetry.v1", key="bike-1")
    async with Publisher(secured_kafka.bootstrap, topic, security=admin) as harness:
        for name in ("microhub.booking.events.v1", "microhub.dispatch.events.v1"):
            await harness.send_raw(b"not json", topic=name, key=TEST_HUB)
    consumers = {
        "booking": booking.consumer("booking"),
        "dispatch-bookings": dispatch.consumer("dispatch-bookings"),
        "dispatch-telemetry": dispatch.consumer("dispatch-telemetry"),
        "reporting-bookings": reporting.consumer("reporting-bookings"),
        "reporting-dispatch": reporting.consumer("reporting-dispatch"),
        "gateway-bookings": gateway.consumer("gateway-bookings"),
        "gateway-dispatch": gateway.consumer("gateway-dispatch"),
    }
    await eventually(
        lambda: all(c.dead_letters.count == 1 for c in consumers.values()),
        what="every consumer to dead-letter its poison record",
    )
    dead_letters: dict[str, str] = {}
    for name in all_topic_names():
        if name.endswith(".dlq"):
            async with TopicReader(secured_kafka.bootstrap, topic(name), security=admin) as dlq:
                # the gateway dead-letters the poison events it reads too
                expected = {
                    "microhub.booking.events.v1.dlq": 3,
                    "microhub.dispatch.events.v1.dlq": 2,
                }.get(name, 1)
                await dlq.wait_for(lambda r, n=expected: len(r.records) >= n, what=name)
                for record in dlq.records:
                    dead_letters[dict(record.headers)["x-microhub-consumer"].decode()] = name
    assert dead_letters == {
        "booking": "microhub.booking.commands.v1.dlq",
        "dispatch-bookings": "microhub.booking.events.v1.dlq",
        "reporting-bookings": "microhub.booking.events.v1.dlq",
        "dispatch-telemetry": "microhub.fleet.telemetry.v1.dlq",
        "reporting-dispatch": "microhub.dispatch.events.v1.dlq",
        "gateway-bookings": "microhub.booking.events.v1.dlq",
        "gateway-dispatch": "microhub.dispatch.events.v1.dlq",
    }
    assert gateway.handlers.forwarded == 2  # the HTTP request and check-in

    # `reporting rebuild` as the reporting principal: no group, its own partitions
    replayed = await rebuild_projection(
        reporting_platform.settings,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}",
    )
    assert replayed["skipped_poison"] == 2
    assert (
        replayed["applied"]
        == reporting.consumer("reporting-bookings").stats.processed
        + reporting.consumer("reporting-dispatch").stats.processed
    )

    # and nothing beyond the file was granted to make this work
    after = secured_kafka.apply(prefix, dry_run=True)
    assert after.missing == [] and after.extra == []


async def read_once(
    kafka: SecuredKafka, principal: str, prefix: str, topic: str, *, group: str | None = None
) -> None:
    """Start a consumer as ``principal`` and fetch once from ``topic`` (in ``group``)."""
    consumer = AIOKafkaConsumer(
        prefix + topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=prefix + group if group else None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka.security(principal, prefix),
    )
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=2000)
    finally:
        await consumer.stop()


async def test_what_the_acls_do_not_allow_is_refused(
    secured_kafka: SecuredKafka, prefix: str
) -> None:
    topic_of = secured_kafka.settings("booking", prefix).topic

    async def publish(principal: str, topic: str) -> None:
        security = secured_kafka.security(principal, prefix)
        async with Publisher(secured_kafka.bootstrap, topic_of, security=security) as producer:
            await producer.send_raw(b"{}", topic=topic, key=TEST_HUB)

    # a produce to a topic it may not write: booking cannot forge dispatch's events
    with pytest.raises(TopicAuthorizationFailedError, match=f"{prefix}microhub.dispatch.events.v1"):
        await publish("booking", "microhub.dispatch.events.v1")
    # a consume from a topic it may not read: dispatch cannot read carriers' commands
    with pytest.raises(
        TopicAuthorizationFailedError, match=f"{prefix}microhub.booking.commands.v1"
    ):
        await read_once(secured_kafka, "dispatch", prefix, "microhub.booking.commands.v1")
    # a group it may not join: reporting may read booking events, but not as dispatch
    with pytest.raises(GroupAuthorizationFailedError, match=f"{prefix}microhub-dispatch-bookings"):
        await read_once(
            secured_kafka,
            "reporting",
            prefix,
            "microhub.booking.events.v1",
            group="microhub-dispatch-bookings",
        )

    # the HTTP API's principal writes carriers' commands (onto their own topics) and, of
    # the internal topics, only the commands topic (hub operators' closures name no
    # carrier: README, "Hub closures"); it reads no events (nor commands), and writes no
    # other internal topic
    await publish("api", "microhub.carriers.parcelco.commands.v1")
    await publish("api", "microhub.booking.commands.v1")
    with pytest.raises(TopicAuthorizationFailedError, match=f"{prefix}microhub.booking.events.v1"):
        await publish("api", "microhub.booking.events.v1")
    for name in ("microhub.booking.events.v1", "microhub.booking.commands.v1"):
        with pytest.raises(TopicAuthorizationFailedError, match=f"{prefix}{name}"):
            await read_once(secured_kafka, "api", prefix, name)

    # a user without any ACL can do nothing at all: its idempotent producer does not
    # even get a producer id (no Write on any topic, no IdempotentWrite on the cluster)
    with pytest.raises(ClusterAuthorizationFailedError):
        await publish(INTRUDER, "microhub.booking.commands.v1")
    with pytest.raises(TopicAuthorizationFailedError):
        await read_once(secured_kafka, INTRUDER, prefix, "microhub.booking.events.v1")

    # KEDA's principal reads a group's committed offsets and the end offsets (the lag),
    # but no records, and no group it does not scale on
    keda = secured_kafka.security("keda", prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=secured_kafka.bootstrap, **keda)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{prefix}microhub-booking")
        assert all(tp.topic == f"{prefix}microhub.booking.commands.v1" for tp in committed)
        with pytest.raises(GroupAuthorizationFailedError):
            await admin.list_consumer_group_offsets(f"{prefix}microhub-carrier-acme")
    finally:
        await admin.close()
    lag_reader = AIOKafkaConsumer(bootstrap_servers=secured_kafka.bootstrap, **keda)
    await lag_reader.start()
    try:
        partitions = [TopicPartition(f"{prefix}microhub.booking.commands.v1", p) for p in range(6)]
        assert len(await lag_reader.end_offsets(partitions)) == 6
    finally:
        await lag_reader.stop()
    with pytest.raises(TopicAuthorizationFailedError):
        await read_once(secured_kafka, "keda", prefix, "microhub.booking.commands.v1")
