"""A standing booking sent on a carrier's own topic, through the gateway (issue 16): the
series and each occurrence's answer come back on that carrier's own events topic, to
nobody else; a series in another carrier's name is refused at the ingress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.app.platform import Platform
from services.runtime.settings import Settings
from tests.integration.test_gateway_over_kafka import (
    booking_status,
    carrier,
    gateway_settings,
    own_events,
    platform,
)
from tests.support.carrier import consignment
from tests.support.hubs import TEST_HUB

__all__ = ["gateway_settings", "platform"]  # the fixtures


async def test_a_series_on_a_carriers_own_topic_is_answered_there_only(
    gateway_settings: Settings, platform: Platform
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    data = {
        "carrier_id": "acme",
        "carrier_reference": "daily",
        "hub_id": TEST_HUB,  # its time zone is UTC here
        "rrule": "FREQ=DAILY;COUNT=2",
        "dtstart": tomorrow.replace(tzinfo=None).isoformat(),
        "consignment": consignment(),
    }
    async with (
        carrier(gateway_settings, "acme") as acme,
        own_events(gateway_settings, "acme") as to_acme,
        own_events(gateway_settings, "bravo") as to_bravo,
    ):
        await acme.send("microhub.booking.series_requested.v1", data, time=datetime.now(UTC))
        [accepted] = await to_acme.wait_count(1, suffix="series_accepted.v1", timeout=30)
        confirmed = await to_acme.wait_count(2, suffix="booking.confirmed.v1", timeout=30)
        references = [f"daily:{(tomorrow + timedelta(days=d)):%Y%m%dT%H%M}" for d in (0, 1)]
        assert sorted(c["data"]["carrier_reference"] for c in confirmed) == references
        assert [o["carrier_reference"] for o in accepted["data"]["occurrences"]] == references

        # a series in bravo's name, on acme's topic: refused there, nothing booked
        forged = data | {"carrier_id": "bravo", "carrier_reference": "forged"}
        await acme.send("microhub.booking.series_requested.v1", forged, time=datetime.now(UTC))
        [refused] = await to_acme.wait_count(1, suffix="command_refused.v1", timeout=30)
        assert refused["data"]["reason"] == "carrier_mismatch"
    for reference in references:
        assert await booking_status(platform, "acme", reference) == "confirmed"
    assert await booking_status(platform, "bravo", f"forged:{tomorrow:%Y%m%dT%H%M}") is None
    assert to_bravo.events == []
