"""Kafka connections: the embedded cluster or a real one, brokers, topic bootstrap."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from services.runtime.embedded_kafka import EmbeddedKafka
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


def security_from(settings: Settings) -> BaseSecurity | None:
    """FastStream security object from the MICROHUB_KAFKA_* settings."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in {"SSL", "SASL_SSL"}
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    mechanism = settings.kafka_sasl_mechanism
    if not (mechanism and settings.kafka_sasl_username and settings.kafka_sasl_password):
        raise ValueError(
            f"MICROHUB_KAFKA_SECURITY_PROTOCOL={protocol} needs MICROHUB_KAFKA_SASL_MECHANISM, "
            "MICROHUB_KAFKA_SASL_USERNAME and MICROHUB_KAFKA_SASL_PASSWORD"
        )
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[
        mechanism
    ]
    return cls(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        ssl_context=context,
        use_ssl=use_ssl,
    )


def aiokafka_security_kwargs(settings: Settings) -> dict[str, Any]:
    """The same security settings in the form plain aiokafka clients take."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"}:
        kwargs["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL"):
        kwargs |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    return kwargs


def librdkafka_security_config(settings: Settings) -> dict[str, Any]:
    """The same security settings for confluent-kafka (librdkafka) clients, such as the
    admin client ``microhub acls apply`` uses (aiokafka's admin has no SCRAM user API)."""
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"}:
        # "probe": the wheel's own OpenSSL looks for the system CAs where distributions keep them
        config["ssl.ca.location"] = settings.kafka_ssl_cafile or "probe"
    if protocol.startswith("SASL"):
        security_from(settings)  # the same clear error when a SASL setting is missing
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username,
            "sasl.password": settings.kafka_sasl_password,
        }
    return config


def make_broker(bootstrap: list[str], settings: Settings, *, client_id: str) -> KafkaBroker:
    """A FastStream broker with our delivery guarantees: idempotent producer, acks=all.

    ``apply_types=False``: handlers validate against the contracts themselves so that a
    poison message can be dead-lettered instead of failing inside the framework.
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
        from services.runtime.topic_admin import apply_topics
        from services.runtime.topics import load_topics, topics_file

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
    from services.runtime.topic_admin import apply_topics

    return (await apply_topics(settings, bootstrap)).created
