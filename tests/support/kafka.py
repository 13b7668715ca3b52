"""Kafka for tests, as a chain: configured broker, else testcontainers, else embedded.

The same test code runs on all three: each test gets its own topic prefix (and so its
own topics and consumer groups) on the session's cluster.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from services.runtime.embedded_kafka import EmbeddedKafka
from tests.support.docker import docker_engine_answers

ENV = "MICROHUB_TEST_KAFKA_BOOTSTRAP_SERVERS"


@dataclass
class KafkaUnderTest:
    kind: str  # "configured" | "testcontainers" | "embedded"
    bootstrap: list[str]
    embedded: EmbeddedKafka | None = None

    @property
    def bootstrap_string(self) -> str:
        return ",".join(self.bootstrap)

    def new_prefix(self) -> str:
        return f"t{uuid.uuid4().hex[:10]}."


def kafka_chain() -> Iterator[KafkaUnderTest]:
    configured = os.environ.get(ENV)
    if configured:
        yield KafkaUnderTest("configured", [s.strip() for s in configured.split(",") if s.strip()])
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield KafkaUnderTest("testcontainers", [container.get_bootstrap_server()])
        return
    with EmbeddedKafka(brokers=3) as embedded:
        yield KafkaUnderTest("embedded", embedded.bootstrap_servers, embedded)
