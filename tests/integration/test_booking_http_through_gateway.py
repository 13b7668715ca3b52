"""The HTTP API writes through the same path as a carrier's Kafka client: onto the
carrier's own commands topic, where the gateway binds the carrier, stamps the receipt time
and applies its rules; the carrier's answers come on its own topic too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from services.gateway.registry import upsert_carriers
from services.gateway.service import GatewayService
from services.runtime.carriers import Carrier as Registered
from services.runtime.settings import Settings
from tests.integration.test_booking_http import auth, body, client
from tests.support.carrier import TopicReader, own_topic
from tests.support.gateway import write_carriers
from tests.support.kafka import KafkaUnderTest, create_topics
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


async def test_a_key_whose_carrier_has_no_topic_is_told_so_and_can_book_once_it_has(
    client: httpx.AsyncClient,
    booking_settings: Settings,
    gateway: GatewayService,
    kafka_cluster: KafkaUnderTest,
    tmp_path: Path,
) -> None:
    # "ghost" has an API key but is in no registry: no commands topic exists for it. The
    # answer is a 403 that names the registry, not a 503 (retry) after the publish timeout.
    for attempt in ("ghost-1", "ghost-1", "ghost-2"):
        response = await client.post(
            "/v1/bookings?wait=5", json=body(attempt), headers=auth("k-ghost")
        )
        assert response.status_code == 403, response.text
        detail = response.json()["detail"]
        assert detail["reason"] == "unknown_carrier" and "carrier registry" in detail["message"]
    assert gateway.handlers.forwarded == 0
    missing: Any = await client.get("/v1/bookings/x", headers=auth("k-ghost"))
    assert missing.status_code == 404

    # an admin registers it and applies its topics: the same key books (a refusal is
    # looked up again, it is not remembered for good)
    async with gateway.unit_of_work() as uow:
        await upsert_carriers(uow.session, [Registered("ghost", "Ghost", True)], origin="api")
    gateway.registry.forget()
    with_ghost = booking_settings.model_copy(
        update={"carriers_file": write_carriers(tmp_path / "with-ghost.yaml", "ghost")}
    )
    await create_topics(with_ghost, kafka_cluster)
    answers: list[httpx.Response] = []

    async def booked() -> bool:
        answers.append(
            await client.post("/v1/bookings?wait=10", json=body("ghost-3"), headers=auth("k-ghost"))
        )
        return answers[-1].status_code != 403

    await eventually(booked, what="the new carrier's command queued", interval=0.2)
    assert answers[-1].status_code == 202, answers[-1].text
    # the gateway reads the topic it had not seen when it joined (a pattern's metadata
    # refresh, rdkafka_consumer.PATTERN_REFRESH_MS), and booking decides
    location = answers[-1].json()["location"]

    async def confirmed() -> bool:
        polled = await client.get(location, headers=auth("k-ghost"))
        return polled.status_code == 200 and polled.json()["status"] == "confirmed"

    await eventually(confirmed, what="the new carrier's booking confirmed", interval=0.2)
