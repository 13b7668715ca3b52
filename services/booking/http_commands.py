"""Where the HTTP API's commands go: onto the calling carrier's own commands topic
(``microhub.carriers.<carrier>.commands.v1``), exactly like a carrier's Kafka client's.

One path, one set of rules: the gateway's ingress binds the carrier, stamps the receipt
time, refuses what any carrier's command would be refused for (``unknown_carrier``,
``clock_skew``, ``carrier_mismatch``) on the carrier's own topic and webhooks, and
forwards the rest to booking. The HTTP API's principal is a platform principal that may
write every active carrier's commands topic (``microhub carriers apply``), nothing of a
carrier's events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from contracts.envelope import Payload, encode, new_event
from contracts.topics import CARRIER_COMMANDS
from services.booking.api_models import SOURCE, PublishCommand, UnknownCarrier
from services.runtime import tracing
from services.runtime.topic_presence import TopicPresence


def ingress_publisher(
    broker: Any,
    topic_of: Callable[[str], str],
    *,
    presence: TopicPresence | None = None,
    source: str = SOURCE,
) -> PublishCommand:
    """Publish a command on its carrier's commands topic (``topic_of(carrier id)``: the
    full name, with the environment's prefix). The envelope's time is the API's clock;
    the gateway decides with the receipt time (the broker's, on a carrier's topic).

    ``presence``: asked first; a topic the brokers say does not exist raises
    ``UnknownCarrier`` (a 403 ``unknown_carrier`` over HTTP) instead of a publish that
    waits for the topic until it times out."""

    async def publish(payload: Payload, hub_id: str, time: datetime) -> str:
        carrier_id: str = payload.carrier_id  # type: ignore[attr-defined]
        topic = topic_of(CARRIER_COMMANDS.for_carrier(carrier_id))
        if presence is not None and await presence.exists(topic) is False:
            raise UnknownCarrier(carrier_id, topic)
        try:
            return await publish_command(broker, payload, topic, hub_id, time, source=source)
        except BaseException:  # a failure or the caller's timeout: the topic may be gone
            if presence is not None:
                presence.forget(topic)
            raise

    return publish


async def publish_command(
    broker: Any, payload: Payload, topic: str, hub_id: str, time: datetime, *, source: str = SOURCE
) -> str:
    """One command from the HTTP API onto ``topic``, keyed by its hub, with the API's
    clock as its time; returns the command's event id."""
    # the request's trace goes on in the command (traceparent extension)
    event = tracing.stamp(new_event(payload, source=source, subject=hub_id, time=time))
    await broker.publish(
        encode(event),
        topic,
        key=hub_id.encode(),
        timestamp_ms=int(time.timestamp() * 1000),
        headers={"content-type": "application/cloudevents+json"},
    )
    return event.id
