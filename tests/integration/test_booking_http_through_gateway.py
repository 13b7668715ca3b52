"""The HTTP API writes through the same path as a carrier's Kafka client: onto the
carrier's own commands topic, where the gateway binds the carrier, stamps the receipt time
and applies its rules; the carrier's answers come on its own topic too."""

from __future__ import annotations

from typing import Any

import httpx

from services.gateway.registry import upsert_carriers
from services.gateway.service import GatewayService
from services.runtime.carriers import Carrier as Registered
from services.runtime.settings import Settings
from tests.integration.test_booking_http import auth, body, client
from tests.support.carrier import TopicReader, own_topic
from tests.support.waiting import eventually

__all__ = ["client"]  # the fixture


def reader(settings: Settings, topic: str) -> TopicReader:
    return TopicReader(settings.bootstrap_list(), settings.topic(topic))


async def test_an_http_booking_goes_through_the_carriers_topic_and_the_gateway(
    client: httpx.AsyncClient, booking_settings: Settings, gateway: GatewayService
) -> None:
    async with (
        reader(booking_settings, own_topic("acme")) as acme_commands,
        reader(booking_settings, own_topic("acme", "events")) as to_acme,
        reader(booking_settings, "microhub.booking.commands.v1") as forwarded,
    ):
        response = await client.post(
            "/v1/bookings?wait=10", json=body("via-gw"), headers=auth("k-acme")
        )
        assert response.status_code == 202 and response.json()["status"] == "confirmed"
        [sent] = await acme_commands.wait_count(1, suffix="booking.requested.v1")
        [answer] = await to_acme.wait_count(1, suffix="booking.confirmed.v1")
        [inside] = await forwarded.wait_count(1, suffix="booking.requested.v1")
    assert sent["source"] == "microhub/http-api" and sent["data"]["carrier_id"] == "acme"
    # the gateway forwarded it (its source names the carrier) and told acme, naming
    # the command the API sent
    assert inside["source"] == "microhub/carriers/acme"
    assert (answer["causationid"], answer["causationsource"]) == (sent["id"], sent["source"])
    assert answer["data"]["booking_id"] == response.json()["booking_id"]
    assert gateway.handlers.forwarded == 1


async def test_an_http_command_of_a_carrier_the_registry_deactivated_is_refused(
    client: httpx.AsyncClient, booking_settings: Settings, gateway: GatewayService
) -> None:
    async with gateway.unit_of_work() as uow:
        await upsert_carriers(uow.session, [Registered("acme", "Acme", False)], origin="api")
    gateway.registry.forget()
    async with reader(booking_settings, own_topic("acme", "events")) as to_acme:
        response = await client.post(
            "/v1/bookings?wait=1", json=body("after-exit"), headers=auth("k-acme")
        )
        assert response.status_code == 202 and response.json()["status"] == "pending"
        [refused] = await to_acme.wait_count(1, suffix="command_refused.v1")
    assert refused["data"]["reason"] == "unknown_carrier"
    assert refused["causationsource"] == "microhub/http-api"
    await eventually(lambda: gateway.handlers.refused == 1, what="the refusal counted")
    polled: Any = await client.get(response.json()["location"], headers=auth("k-acme"))
    assert polled.status_code == 404  # nothing was booked
    assert gateway.handlers.forwarded == 0
