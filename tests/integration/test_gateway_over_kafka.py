"""Carriers' commands through the gateway's ingress, on the session's Kafka: the carrier is
the topic's, a command in another carrier's name is refused on the sender's own topic,
and what booking decides with is the receipt time, never the carrier's clock.

These run in real time (the ingress stamps commands with the broker's LogAppendTime, or
its own clock on the embedded mock): the test hub is open all day, in UTC.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.app.platform import Platform
from services.booking import store as booking_store
from services.booking.domain import booking_id_for
from services.booking.service import BookingService
from services.runtime.kafka import KafkaCluster
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, envelope, own_topic
from tests.support.dispatch import ALL_DAY
from tests.support.gateway import write_carriers
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue
from tests.support.kafka import KafkaUnderTest, create_topics
from tests.support.waiting import eventually

UTC_ALL_DAY = {
    "opening_hours": {day: ["00:00-23:59"] for day in ALL_DAY},
    "city": {"id": "testcity", "name": "Test City", "country": "DE", "timezone": "UTC"},
    "cancellation_cutoff_minutes": 120,
    "check_in_early_minutes": 120,
}


def next_slot(now: datetime, *, hours: int = 1) -> datetime:
    """A full hour ``hours`` ahead, never the 23:00 slot (it would end past closing)."""
    slot = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
    return slot + timedelta(hours=1) if slot.hour == 23 else slot


@pytest.fixture
def gateway_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "hubs_file": write_catalogue(tmp_path / "hubs.yaml", hub_config(**UTC_ALL_DAY)),
            "carriers_file": write_carriers(tmp_path / "carriers.yaml", "acme", "bravo"),
        }
    )


@pytest.fixture
async def platform(
    gateway_settings: Settings,
    kafka_cluster: KafkaUnderTest,
    database_url: str,
    tmp_path: Path,
) -> AsyncIterator[Platform]:
    """Booking and the gateway, each on its own database (the gateway's on both kinds)."""
    await create_topics(gateway_settings, kafka_cluster)
    settings = gateway_settings.model_copy(
        update={
            "database_urls": {
                "booking": f"sqlite+aiosqlite:///{tmp_path / 'booking.db'}",
                "gateway": database_url,
            }
        }
    )
    cluster = KafkaCluster(settings, bootstrap=settings.bootstrap_list())
    running = await Platform(
        settings, services=["booking", "gateway"], http=False, cluster=cluster
    ).start()
    try:
        yield running
    finally:
        await running.stop()


def carrier(settings: Settings, carrier_id: str) -> Carrier:
    return Carrier(
        settings.bootstrap_list(),
        prefix=settings.kafka_topic_prefix,
        carrier_id=carrier_id,
        topic=own_topic(carrier_id),
    )


def own_events(settings: Settings, carrier_id: str) -> TopicReader:
    return TopicReader(settings.bootstrap_list(), settings.topic(own_topic(carrier_id, "events")))


async def booking_status(platform: Platform, carrier_id: str, reference: str) -> str | None:
    booking: BookingService = platform.services["booking"]  # type: ignore[assignment]
    async with booking.sessions() as session:
        found = await booking_store.get_booking(session, booking_id_for(carrier_id, reference))
    return found.status.value if found else None


async def test_a_command_in_another_carriers_name_is_refused_on_the_senders_topic(
    gateway_settings: Settings, platform: Platform
) -> None:
    now = datetime.now(UTC)
    slot = next_slot(now, hours=5)
    async with (
        carrier(gateway_settings, "acme") as acme,
        carrier(gateway_settings, "bravo") as bravo,
        own_events(gateway_settings, "acme") as to_acme,
        own_events(gateway_settings, "bravo") as to_bravo,
    ):
        await bravo.request("b-1", hub_id=TEST_HUB, slot_start=slot, time=now)
        [confirmed] = await to_bravo.wait_count(1, suffix="booking.confirmed.v1", timeout=30)
        assert confirmed["data"]["carrier_id"] == "bravo"

        # acme, on its own topic, cancels bravo's booking in bravo's name
        forged = await acme.send(
            "microhub.booking.cancellation_requested.v1",
            {"carrier_id": "bravo", "carrier_reference": "b-1", "hub_id": TEST_HUB},
            time=now,
        )
        [refused] = await to_acme.wait_count(1, suffix="command_refused.v1", timeout=30)
        assert refused["data"] == refused["data"] | {
            "carrier_id": "acme",
            "command_id": forged["id"],
            "command_type": "microhub.booking.cancellation_requested.v1",
            "carrier_reference": "b-1",
            "reason": "carrier_mismatch",
        }
        assert "bravo" not in json.dumps(refused)  # nothing of bravo's told to acme
        # and a request in bravo's name is refused the same way: nothing is booked
        await acme.send(
            "microhub.booking.requested.v1",
            bravo.request_data("b-2", hub_id=TEST_HUB, slot_start=slot),
            time=now,
        )
        await to_acme.wait_count(2, suffix="command_refused.v1", timeout=30)

    # bravo's booking is untouched: still confirmed, no second booking, nothing more to bravo
    assert await booking_status(platform, "bravo", "b-1") == "confirmed"
    assert await booking_status(platform, "bravo", "b-2") is None
    gateway = platform.services["gateway"]
    assert gateway.handlers.refused == 2 and gateway.handlers.forwarded == 1
    assert [e["type"] for e in to_bravo.events] == ["microhub.booking.confirmed.v1"]


async def test_the_receipt_time_decides_a_backdated_cancellation_is_late_and_an_early_check_in_too_early(
    gateway_settings: Settings, platform: Platform
) -> None:
    now = datetime.now(UTC)
    soon = next_slot(now)  # within the cancellation cutoff (2 h) from now
    later = next_slot(now, hours=72)  # check-in opens 2 h before it
    async with (
        carrier(gateway_settings, "acme") as acme,
        own_events(gateway_settings, "acme") as to_acme,
    ):
        await acme.request("soon", hub_id=TEST_HUB, slot_start=soon, time=now)
        await acme.request("later", hub_id=TEST_HUB, slot_start=later, time=now)
        await to_acme.wait_count(2, suffix="booking.confirmed.v1", timeout=30)

        # claims it cancelled yesterday, long before the cutoff: received now, it is late
        await acme.cancel("soon", hub_id=TEST_HUB, time=now - timedelta(days=1))
        [cancelled] = await to_acme.wait_count(1, suffix="booking.cancelled.v1", timeout=30)
        assert cancelled["data"]["late"] is True
        received = datetime.fromisoformat(cancelled["time"])
        assert abs(received - datetime.now(UTC)) < timedelta(minutes=1)

        # claims its truck is at the hub at the slot's start, three days ahead: it is not
        await acme.check_in("later", hub_id=TEST_HUB, time=later)
        [refused] = await to_acme.wait_count(1, suffix="command_rejected.v1", timeout=30)
        assert refused["data"]["reason"] == "check_in_too_early"
    assert await booking_status(platform, "acme", "later") == "confirmed"


async def test_a_command_far_from_its_receipt_time_is_refused_as_clock_skew(
    gateway_settings: Settings, kafka_cluster: KafkaUnderTest, tmp_path: Path
) -> None:
    checked = gateway_settings.model_copy(
        update={
            "max_clock_skew_seconds": 300,
            "database_urls": {
                name: f"sqlite+aiosqlite:///{tmp_path / name}.db" for name in ("booking", "gateway")
            },
        }
    )
    await create_topics(checked, kafka_cluster)
    cluster = KafkaCluster(checked, bootstrap=checked.bootstrap_list())
    platform = await Platform(
        checked, services=["booking", "gateway"], http=False, cluster=cluster
    ).start()
    try:
        async with (
            carrier(checked, "acme") as acme,
            own_events(checked, "acme") as to_acme,
        ):
            now = datetime.now(UTC)
            request = acme.request_data("skewed", hub_id=TEST_HUB, slot_start=next_slot(now))
            body = envelope(
                "microhub.booking.requested.v1",
                request,
                time=now - timedelta(hours=1),
                subject=TEST_HUB,
            )
            await acme.send_raw(json.dumps(body).encode(), key=TEST_HUB)
            [refused] = await to_acme.wait_count(1, suffix="command_refused.v1", timeout=30)
            assert refused["data"]["reason"] == "clock_skew"
        assert await booking_status(platform, "acme", "skewed") is None
    finally:
        await platform.stop()


async def test_a_carrier_the_registry_deactivated_is_refused(
    gateway_settings: Settings, platform: Platform
) -> None:
    from services.gateway.registry import upsert_carriers
    from services.runtime.carriers import Carrier as Registered

    gateway: Any = platform.services["gateway"]
    async with gateway.unit_of_work() as uow:
        await upsert_carriers(uow.session, [Registered("acme", "Acme", False)], origin="api")
    gateway.registry.forget()
    async with (
        carrier(gateway_settings, "acme") as acme,
        own_events(gateway_settings, "acme") as to_acme,
    ):
        now = datetime.now(UTC)
        await acme.request("r-1", hub_id=TEST_HUB, slot_start=next_slot(now), time=now)
        [refused] = await to_acme.wait_count(1, suffix="command_refused.v1", timeout=30)
        assert refused["data"]["reason"] == "unknown_carrier"
    await eventually(lambda: gateway.handlers.refused == 1, what="the refusal counted")
    assert await booking_status(platform, "acme", "r-1") is None
