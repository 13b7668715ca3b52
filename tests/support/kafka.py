"""Kafka for tests, as a chain: a configured broker, else testcontainers (a Docker engine
answers), else Apache Kafka from its Maven Central jars (``java`` and ``mvn`` work), else
the embedded librdkafka mock.

``MICROHUB_TEST_KAFKA`` picks a link by name instead (``apache``, ``embedded``,
``testcontainers``): ``MICROHUB_TEST_KAFKA=embedded make test`` runs the suite on the
mock, as on a machine without Java. With ``CI=true`` the suite refuses to fall back to
the mock silently: CI runs on the real engine.

The same test code runs on every link: each test gets its own topic prefix (and so its
own topics and consumer groups) on the session's cluster. Tests that need what only a
real broker has (two members in one group, the admin API, ACLs, a broker to kill) ask
for :func:`real_kafka` instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from services.runtime.apache_kafka import ApacheKafka, kafka_version, missing_tools
from services.runtime.embedded_kafka import EmbeddedKafka
from services.runtime.settings import Settings
from tests.support.docker import docker_engine_answers

ENV = "MICROHUB_TEST_KAFKA_BOOTSTRAP_SERVERS"
CHOICE = "MICROHUB_TEST_KAFKA"
KINDS = ("configured", "testcontainers", "apache", "embedded")


@dataclass
class KafkaUnderTest:
    kind: str  # one of KINDS
    bootstrap: list[str]
    embedded: EmbeddedKafka | None = None
    apache: ApacheKafka | None = None
    description: str = ""

    @property
    def bootstrap_string(self) -> str:
        return ",".join(self.bootstrap)

    @property
    def is_real(self) -> bool:
        """A real Apache Kafka (several group members, admin API, ACLs)."""
        return self.kind != "embedded"

    def new_prefix(self) -> str:
        return f"t{uuid.uuid4().hex[:10]}."


def chosen_kind() -> str:
    """Which link of the chain this session uses (decided without starting anything)."""
    if os.environ.get(ENV):
        return "configured"
    choice = os.environ.get(CHOICE, "").strip().lower()
    if choice:
        if choice not in KINDS[1:]:
            raise pytest.UsageError(
                f"{CHOICE}={choice!r}: choose apache, embedded or testcontainers"
            )
        if choice == "apache" and (reason := missing_tools()):
            raise pytest.UsageError(f"{CHOICE}=apache but {reason}")
        return choice
    if docker_engine_answers():
        return "testcontainers"
    reason = missing_tools()
    if reason is None:
        return "apache"
    if os.environ.get("CI", "").lower() == "true":
        raise pytest.UsageError(
            f"CI runs the suite on Apache Kafka, but {reason}; set {CHOICE}=embedded to run "
            "it on the librdkafka mock on purpose"
        )
    return "embedded"


def describe_choice(kind: str) -> str:
    if kind == "configured":
        return f"configured broker at {os.environ[ENV]}"
    if kind == "apache":
        return f"apache-kafka {kafka_version()}, 1 node (jars from Maven Central)"
    if kind == "testcontainers":
        return "apache-kafka in a container (testcontainers)"
    return "librdkafka-mock (embedded, 3 brokers)"


def kafka_chain(say: Callable[[str], None] = print) -> Iterator[KafkaUnderTest]:
    kind = chosen_kind()
    if kind == "configured":
        servers = [s.strip() for s in os.environ[ENV].split(",") if s.strip()]
        yield KafkaUnderTest(kind, servers, description=describe_choice(kind))
    elif kind == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield KafkaUnderTest(
                kind, [container.get_bootstrap_server()], description=describe_choice(kind)
            )
    elif kind == "apache":
        with ApacheKafka(nodes=1, say=say) as apache:
            yield KafkaUnderTest(
                kind, apache.bootstrap_servers, apache=apache, description=apache.describe()
            )
    else:
        with EmbeddedKafka(brokers=3) as embedded:
            yield KafkaUnderTest(
                kind, embedded.bootstrap_servers, embedded, description=describe_choice(kind)
            )


def real_kafka_or_skip() -> None:
    """For fixtures that start their own Apache Kafka (three nodes, SASL): the only reason
    to skip is a machine without Java or Maven."""
    reason = missing_tools()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"this test needs Apache Kafka, and CI must have it: {reason}")
        pytest.skip(f"needs Apache Kafka from Maven Central: {reason}")


async def create_topics(settings: Settings, cluster: KafkaUnderTest | None = None) -> list[str]:
    """The topics file applied with ``settings``' prefix (through the admin API, or the
    mock's C API when ``cluster`` is the embedded one); returns the topic names."""
    from services.runtime.kafka import KafkaCluster

    embedded = cluster.embedded if cluster is not None else None
    kafka = KafkaCluster(settings, bootstrap=settings.bootstrap_list(), embedded=embedded)
    return await kafka.create_topics(settings)
