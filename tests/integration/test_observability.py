"""Observability of a running platform: `/metrics` exposes the named series (decisions
by outcome and reason, consumer lag per partition, outbox backlog and age, dead letters
by reason, wave and solver time, HTTP latency), and a trace runs from an HTTP request
through Kafka (the CloudEvents `traceparent` extension) to the booking's outcome and the
services that consume it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.app.platform import Platform
from services.runtime import tracing
from services.runtime.kafka import KafkaCluster
from services.runtime.settings import Settings
from tests.support.carrier import consignment
from tests.support.waiting import eventually

HUB = "ber-westhafen"
CARRIER = {"Authorization": "Bearer demo-carrier-parcelco"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    tracing.setup("microhub-test")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
async def platform(settings: Settings, topics: list[str], kafka_cluster) -> AsyncIterator[Platform]:
    # the public demo keys (CARRIER, ADMIN above)
    s = settings.model_copy(update={"http_port": 0, "demo_mode": True})
    cluster = KafkaCluster(s, bootstrap=kafka_cluster.bootstrap, embedded=kafka_cluster.embedded)
    p = await Platform(s, cluster=cluster).start()
    try:
        yield p
    finally:
        await p.stop()


async def book(client: httpx.AsyncClient, reference: str, headers: dict[str, str]) -> dict:
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    slots = await client.get(f"/v1/hubs/{HUB}/slots", params={"date": str(day)}, headers=CARRIER)
    slot = next(s for s in slots.json() if s["bookable"])
    answer = await client.post(
        "/v1/bookings?wait=10",
        json={
            "carrier_reference": reference,
            "hub_id": HUB,
            "slot_start": slot["start"],
            "consignment": consignment(),
        },
        headers=CARRIER | headers,
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


async def test_a_trace_runs_from_the_http_request_to_the_outcome(
    platform: Platform, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"  # the caller's own trace
    async with httpx.AsyncClient(base_url=str(platform.base_url)) as client:
        booked = await book(client, "traced-1", {"traceparent": parent})
    assert booked["status"] == "confirmed", booked

    def of_trace() -> list:
        return [s for s in spans.get_finished_spans() if f"{s.context.trace_id:032x}" == TRACE_ID]

    def consumed(event_type: str) -> list:
        return [s for s in of_trace() if s.name == f"process {event_type}"]

    # booking decided the command in the request's trace; the outcome it published carried
    # the trace on to dispatch and reporting, which consumed it
    await eventually(
        lambda: bool(consumed("microhub.booking.confirmed.v1")),
        what="a consumer of the BookingConfirmed in the request's trace",
        timeout=30,
    )
    [server] = [s for s in of_trace() if s.kind is SpanKind.SERVER]
    assert server.parent is not None and f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"
    # the command went onto the carrier's topic while the request's span was current; the
    # gateway's ingress took it from there in the trace, and booking from the gateway
    by_group = {
        s.attributes["messaging.consumer.group.name"]: s
        for s in consumed("microhub.booking.requested.v1")
    }
    assert set(by_group) == {"gateway-ingress", "booking"}
    ingress, decided = by_group["gateway-ingress"], by_group["booking"]
    assert ingress.kind is SpanKind.CONSUMER and decided.kind is SpanKind.CONSUMER
    assert ingress.parent is not None and ingress.parent.span_id == server.context.span_id
    assert decided.parent is not None and decided.parent.span_id == ingress.context.span_id
    await eventually(
        lambda: (
            {
                s.attributes["messaging.consumer.group.name"]
                for s in consumed("microhub.booking.confirmed.v1")
            }
            >= {"dispatch-bookings", "reporting-bookings"}
        ),
        what="dispatch and reporting in the trace",
        timeout=30,
    )
    # the outcome's consumers continue booking's span
    for span in consumed("microhub.booking.confirmed.v1"):
        assert span.parent is not None and span.parent.span_id == decided.context.span_id


async def test_metrics_expose_the_named_series(platform: Platform, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=str(platform.base_url)) as client:
        await book(client, "metered-1", {})
        producer = AIOKafkaProducer(bootstrap_servers=platform.cluster.bootstrap)
        await producer.start()
        try:  # a poison record: dead-lettered, counted by reason
            await producer.send_and_wait(
                settings.topic("microhub.booking.commands.v1"), b"not json", key=HUB.encode()
            )
        finally:
            await producer.stop()

        async def dead_lettered() -> bool:
            text = (await client.get("/metrics")).text
            return 'reason="not_json"' in text

        await eventually(dead_lettered, what="the dead letter counted", timeout=30)
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'microhub_booking_decisions_total{outcome="confirmed",reason=""}' in text
    assert 'microhub_dead_lettered_total{consumer="booking"' in text
    lag = [line for line in text.splitlines() if line.startswith("microhub_consumer_lag{")]
    assert any('consumer="booking"' in line and 'partition="' in line for line in lag), lag
    for series in (
        'microhub_outbox_pending{service="booking"}',
        'microhub_outbox_oldest_pending_age_seconds{service="dispatch"}',
        "microhub_http_request_duration_seconds_bucket{",
        'route="/v1/bookings"',
        "microhub_consumer_records{",
        "microhub_events_emitted_total{",
        "# TYPE microhub_dispatch_solver_seconds histogram",
        "# TYPE microhub_dispatch_wave_planned_km histogram",
    ):
        assert series in text, series
