"""Kafka connections: the embedded cluster or a real one, brokers, topic bootstrap."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from faststream.kafka import KafkaBroker

from contracts.envelope import MAX_RECORD_BYTES
from services.runtime.embedded_kafka import EmbeddedKafka
from services.runtime.kafka_security import security_from
from services.runtime.settings import Settings
from services.runtime.topic_admin import apply_topics
from services.runtime.topics import load_topics, topics_file

log = logging.getLogger(__name__)

# a dead letter's copy of a record plus its headers, with room to spare (below the DLQ
# topics' max.message.bytes, infra/topics.yaml)
MAX_REQUEST_BYTES = MAX_RECORD_BYTES + 64 * 1024


def make_broker(bootstrap: list[str], settings: Settings, *, client_id: str) -> KafkaBroker:
    """A FastStream broker with our delivery guarantees: idempotent producer, acks=all.

    ``apply_types=False``: handlers validate against the contracts themselves so that a
    poison message can be dead-lettered instead of failing inside the framework.

    ``max_request_size``: the largest record it sends is a dead letter (a copy of at most
    ``MAX_RECORD_BYTES`` and its headers); the DLQ topics take it (infra/topics.yaml).
    """
    return KafkaBroker(
        bootstrap,
        client_id=f"{settings.kafka_client_id}-{client_id}",
        enable_idempotence=True,
        acks="all",
        apply_types=False,
        security=security_from(settings),
        request_timeout_ms=30_000,
        retry_backoff_ms=200,
        max_request_size=MAX_REQUEST_BYTES,
        logger=None,
        graceful_timeout=15.0,
    )


@dataclass
class KafkaCluster:
    """The Kafka a process talks to: configured servers, or an embedded cluster it owns."""

    settings: Settings
    bootstrap: list[str] = field(default_factory=list)
    embedded: EmbeddedKafka | None = None

    async def start(self) -> KafkaCluster:
        if self.settings.kafka_is_embedded:
            self.embedded = EmbeddedKafka(brokers=self.settings.kafka_embedded_brokers).start()
            self.bootstrap = self.embedded.bootstrap_servers
        else:
            self.bootstrap = self.settings.bootstrap_list()
        await self.create_topics(self.settings)
        return self

    async def create_topics(self, settings: Settings) -> list[str]:
        """Apply infra/topics.yaml (with ``settings.kafka_topic_prefix``): create missing
        topics, grow partitions, report drift. Returns the topic names."""
        specs = load_topics(topics_file(settings))
        await apply_topics(settings, self.bootstrap, embedded=self.embedded, specs=specs)
        return [settings.topic(s.name) for s in specs]

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


async def ensure_topics(bootstrap: list[str], settings: Settings) -> list[str]:
    """Apply the topics file to a cluster this process does not own; returns the names of
    the topics it created (never alters configs, deletes or shrinks)."""
    return (await apply_topics(settings, bootstrap)).created
