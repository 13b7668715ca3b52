"""Hub closures through the gateway, on the session's Kafka (issue 16): a carrier cannot
close a hub from its own topic (refused ``carrier_mismatch``, nothing closed); a closure
the platform decides reaches a carrier only as the notice about its own booking, never
as the hub's own event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.app.platform import Platform
from services.booking import store as booking_store
from services.booking.service import BookingService
from services.runtime.settings import Settings
from tests.integration.test_gateway_over_kafka import (
    booking_status,
    carrier,
    gateway_settings,
    next_slot,
    own_events,
    platform,
)
from tests.support.carrier import Carrier
from tests.support.hubs import TEST_HUB

__all__ = ["gateway_settings", "platform"]  # the fixtures

CLOSE = "microhub.booking.hub_closure_requested.v1"


def closure(slot: datetime, closure_id: str) -> dict[str, str]:
    return {
        "hub_id": TEST_HUB,
        "closure_id": closure_id,
        "starts_at": slot.isoformat(),
        "ends_at": (slot + timedelta(hours=1)).isoformat(),
        "reason": "flooded",
        "requested_by": "someone",
    }


async def closures(platform: Platform) -> list[str]:
    booking: BookingService = platform.services["booking"]  # type: ignore[assignment]
    async with booking.sessions() as session:
        rows = await session.execute(booking_store.hub_closures.select())
        return [row.id for row in rows]


async def test_a_carrier_cannot_close_a_hub_and_hears_of_a_closure_only_about_its_booking(
    gateway_settings: Settings, platform: Platform
) -> None:
    now = datetime.now(UTC)
    slot = next_slot(now, hours=5)
    async with (
        carrier(gateway_settings, "acme") as acme,
        own_events(gateway_settings, "acme") as to_acme,
        Carrier(  # a platform principal: the internal commands topic, as the HTTP API
            gateway_settings.bootstrap_list(), prefix=gateway_settings.kafka_topic_prefix
        ) as platform_api,
    ):
        await acme.request("a-1", hub_id=TEST_HUB, slot_start=slot, time=now)
        await to_acme.wait_count(1, suffix="booking.confirmed.v1", timeout=30)

        forged = await acme.send(CLOSE, closure(slot, "by-acme"), time=now)
        [refused] = await to_acme.wait_count(1, suffix="command_refused.v1", timeout=30)
        assert refused["data"]["reason"] == "carrier_mismatch"
        assert refused["data"]["command_id"] == forged["id"]
        assert refused["data"]["command_type"] == CLOSE

        await platform_api.send(CLOSE, closure(slot, "by-operator"), time=now)
        [notice] = await to_acme.wait_count(1, suffix="closure_affected.v1", timeout=30)
        assert notice["data"]["carrier_reference"] == "a-1"
        assert notice["data"]["closure_id"] == "by-operator"

    assert await closures(platform) == ["by-operator"]
    assert await booking_status(platform, "acme", "a-1") == "confirmed"
    assert not [e for e in to_acme.events if "hub_closure" in e["type"]]
