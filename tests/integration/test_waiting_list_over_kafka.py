"""The waiting list over a real Kafka, on PostgreSQL and SQLite, as a carrier's system
sees it (raw JSON on the commands topic, answers on the events topic): a cancellation
frees the slot, the first waiting request is offered it and accepts, and is confirmed;
an offer nobody answers expires at event time and goes to the next in line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.booking import store
from services.booking.service import BookingService
from services.runtime.settings import Settings
from tests.integration.test_booking_answers import answered
from tests.support.carrier import Carrier, TopicReader, consignment, monday_after
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue

NOW = monday_after(datetime.now(UTC)) + timedelta(hours=5)  # Monday 06:00 Berlin (winter)
SLOT = NOW + timedelta(days=1, hours=3)  # Tuesday 09:00 Berlin, on the hourly grid
MINUTE = timedelta(minutes=1)


@pytest.fixture
def booking_settings(settings: Settings, tmp_path: Path) -> Settings:
    one_dock = hub_config(docks_per_slot=1, waitlist_offer_minutes=10)
    return settings.model_copy(
        update={"hubs_file": write_catalogue(tmp_path / "hubs.yaml", one_dock)}
    )


async def command(
    carrier: Carrier, outcomes: TopicReader, kind: str, reference: str, at: datetime, **data: Any
) -> list[dict[str, Any]]:
    body = {"carrier_id": "acme", "carrier_reference": reference, "hub_id": TEST_HUB, **data}
    sent = await carrier.send(f"microhub.booking.{kind}", body, time=at)
    return await answered(outcomes, sent)


async def wait_for_slot(carrier: Carrier, outcomes: TopicReader, reference: str, at: datetime):
    slot = {"slot_start": SLOT.isoformat(), "consignment": consignment(), "wait": True}
    return await command(carrier, outcomes, "requested.v2", reference, at, **slot)


def offers_to(outcomes: TopicReader, reference: str) -> list[dict[str, Any]]:
    return [
        e for e in outcomes.of_type("waitlist_offered.v1")
        if e["data"]["carrier_reference"] == reference
    ]  # fmt: skip


async def docks(booking: BookingService) -> int:
    async with booking.sessions() as session:
        return (await store.usage_of(session, TEST_HUB, SLOT)).docks_used


async def test_a_cancellation_frees_the_slot_for_the_first_waiting_who_accepts_and_is_confirmed(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    [first] = await wait_for_slot(carrier, outcomes, "first", NOW)
    assert first["type"] == "microhub.booking.confirmed.v1"
    [waiting] = await wait_for_slot(carrier, outcomes, "second", NOW + MINUTE)
    assert waiting["type"] == "microhub.booking.waitlisted.v1"
    assert waiting["data"]["position"] == 1 and waiting["data"]["reason"] == "slot_docks_full"

    [cancelled] = await command(
        carrier, outcomes, "cancellation_requested.v1", "first", NOW + 5 * MINUTE
    )
    assert cancelled["type"] == "microhub.booking.cancelled.v1"
    await outcomes.wait_for(lambda r: offers_to(r, "second"), what="the offer to second")
    [offer] = offers_to(outcomes, "second")
    assert "causationid" not in offer  # it answers no command
    assert datetime.fromisoformat(offer["data"]["offer_expires_at"]) == NOW + 15 * MINUTE

    answer = await command(
        carrier, outcomes, "waitlist_offer_accept.v1", "second", NOW + 6 * MINUTE
    )
    assert [a["type"] for a in answer] == ["microhub.booking.confirmed.v1"]
    assert answer[0]["data"]["slot_start"] == first["data"]["slot_start"]
    assert await docks(booking) == 1


async def test_an_offer_that_expires_goes_to_the_next_in_line(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader
) -> None:
    await wait_for_slot(carrier, outcomes, "first", NOW)
    await wait_for_slot(carrier, outcomes, "second", NOW + MINUTE)
    [third] = await wait_for_slot(carrier, outcomes, "third", NOW + 2 * MINUTE)
    assert third["data"]["position"] == 2
    await command(carrier, outcomes, "cancellation_requested.v1", "first", NOW + 5 * MINUTE)
    await outcomes.wait_for(lambda r: offers_to(r, "second"), what="the offer to second")

    # second never answers: at the next command of the hub after its offer expired
    # (event time), the offer ends and third, next in line, is offered the slot first
    late = NOW + 16 * MINUTE
    [confirmed] = await command(carrier, outcomes, "waitlist_offer_accept.v1", "third", late)
    assert confirmed["type"] == "microhub.booking.confirmed.v1"
    await outcomes.wait_for(
        lambda r: r.events[-1]["type"].endswith("stop_terms.v1"), what="third's stop terms"
    )
    happened = [
        (e["type"].removeprefix("microhub.booking."), e["data"]["carrier_reference"])
        for e in outcomes.events
    ][-4:]
    assert happened == [
        ("waitlist_ended.v1", "second"),
        ("waitlist_offered.v1", "third"),
        ("confirmed.v1", "third"),
        ("stop_terms.v1", "third"),  # a v2 request's terms follow its confirmation
    ]
    [ended] = outcomes.of_type("waitlist_ended.v1")
    assert ended["data"]["reason"] == "offer_expired"
    [expired] = await command(carrier, outcomes, "waitlist_offer_accept.v1", "second", late)
    assert expired["type"] == "microhub.booking.command_rejected.v2"
    assert expired["data"]["reason"] == "offer_expired"
    assert await docks(booking) == 1
