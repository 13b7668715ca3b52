"""Answers on a carrier's own topic name the carrier's own command: its ``id`` and
``source`` as ``causationid`` and ``causationsource``, for booking's answers and the
gateway's refusals alike; two carriers using the same ids each get their own answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from services.app.platform import Platform
from services.runtime.settings import Settings
from tests.integration.test_gateway_over_kafka import (
    booking_status,
    carrier,
    gateway_settings,
    next_slot,
    own_events,
    platform,
)
from tests.support.carrier import consignment, envelope
from tests.support.hubs import TEST_HUB

__all__ = ["gateway_settings", "platform"]  # the fixtures


def command(carrier_id: str, event_id: str, reference: str, slot: datetime, now: datetime) -> dict:
    body = {
        "carrier_id": carrier_id,
        "carrier_reference": reference,
        "hub_id": TEST_HUB,
        "slot_start": slot.isoformat(),
        "consignment": consignment(),
    }
    doc = envelope("microhub.booking.requested.v1", body, time=now, subject=TEST_HUB)
    return doc | {"id": event_id, "source": f"{carrier_id}/tms"}


async def test_two_carriers_using_the_same_command_id_each_get_their_own_answer(
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
        for sender in (acme, bravo):
            doc = command(sender.carrier_id, "1", f"{sender.carrier_id}-ref", slot, now)
            await sender.send_raw(json.dumps(doc).encode(), key=TEST_HUB)
        [acme_answer] = await to_acme.wait_count(1, suffix="booking.confirmed.v1", timeout=30)
        [bravo_answer] = await to_bravo.wait_count(1, suffix="booking.confirmed.v1", timeout=30)

    assert (acme_answer["causationid"], acme_answer["causationsource"]) == ("1", "acme/tms")
    assert acme_answer["data"]["carrier_reference"] == "acme-ref"
    assert (bravo_answer["causationid"], bravo_answer["causationsource"]) == ("1", "bravo/tms")
    assert bravo_answer["data"]["carrier_reference"] == "bravo-ref"
    # both were decided: neither command was taken for the other's resend
    assert await booking_status(platform, "acme", "acme-ref") == "confirmed"
    assert await booking_status(platform, "bravo", "bravo-ref") == "confirmed"


async def test_the_gateways_refusal_names_the_carriers_command_too(
    gateway_settings: Settings, platform: Platform
) -> None:
    now = datetime.now(UTC)
    slot = next_slot(now, hours=6)
    async with (
        carrier(gateway_settings, "acme") as acme,
        own_events(gateway_settings, "acme") as to_acme,
    ):
        forged = command("bravo", "x-forged", "f-1", slot, now)  # in bravo's name
        await acme.send_raw(json.dumps(forged).encode(), key=TEST_HUB)
        [refused] = await to_acme.wait_count(1, suffix="command_refused.v1", timeout=30)
        assert refused["data"]["reason"] == "carrier_mismatch"
        assert (refused["causationid"], refused["causationsource"]) == ("x-forged", "bravo/tms")

        mine = command("acme", "x-42", "a-1", slot, now)
        await acme.send_raw(json.dumps(mine).encode(), key=TEST_HUB)
        [answer] = await to_acme.wait_count(1, suffix="booking.confirmed.v1", timeout=30)
    assert (answer["causationid"], answer["causationsource"]) == ("x-42", "acme/tms")
    assert await booking_status(platform, "acme", "a-1") == "confirmed"


async def test_a_command_sent_again_on_a_carriers_topic_is_told_its_answer_again(
    gateway_settings: Settings, platform: Platform
) -> None:
    """The README's promise on a carrier's own topic too: the very same command again (a
    carrier that did not see its answer) gets the same answer again, naming its id, and
    books nothing more; a refused one is refused again."""
    now = datetime.now(UTC)
    slot = next_slot(now, hours=7)
    async with (
        carrier(gateway_settings, "acme") as acme,
        own_events(gateway_settings, "acme") as to_acme,
    ):
        record = json.dumps(command("acme", "again-1", "a-again", slot, now)).encode()
        await acme.send_raw(record, key=TEST_HUB)
        [first] = await to_acme.wait_count(1, suffix="booking.confirmed.v1", timeout=30)
        await acme.send_raw(record, key=TEST_HUB)  # the same record, sent again
        [_, again] = await to_acme.wait_count(2, suffix="booking.confirmed.v1", timeout=30)

        forged = json.dumps(command("bravo", "again-2", "f-again", slot, now)).encode()
        await acme.send_raw(forged, key=TEST_HUB)
        await to_acme.wait_count(1, suffix="command_refused.v1", timeout=30)
        await acme.send_raw(forged, key=TEST_HUB)
        [_, refused_again] = await to_acme.wait_count(2, suffix="command_refused.v1", timeout=30)

    assert again["data"] == first["data"]
    assert (again["causationid"], again["causationsource"]) == ("again-1", "acme/tms")
    assert again["id"] != first["id"]  # a new event, telling the same answer
    assert refused_again["data"]["reason"] == "carrier_mismatch"
    assert refused_again["causationid"] == "again-2"
    assert await booking_status(platform, "acme", "a-again") == "confirmed"
    assert await booking_status(platform, "bravo", "f-again") is None  # never forwarded
