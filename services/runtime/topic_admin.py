"""Observing and changing a cluster's topics: the admin side of ``apply_topics``.

A real Kafka goes through aiokafka's admin client. The librdkafka mock cluster (the
embedded broker) implements neither CreateTopics, CreatePartitions nor DescribeConfigs,
so when this process owns it topics are created through its C API and their configs
remembered here; it cannot add partitions. The rules (what to create, grow or report)
are in ``topics.plan``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion, KafkaError

from services.runtime.kafka_security import aiokafka_security_kwargs
from services.runtime.settings import Settings
from services.runtime.topics import (
    ObservedTopic,
    Plan,
    TopicsError,
    TopicSpec,
    load_topics,
    plan,
    topics_file,
)

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
TOPIC_AUTHORIZATION_FAILED = 29


# --- observing and executing ------------------------------------------------------------


class TopicAdmin(Protocol):
    async def brokers(self) -> int: ...
    async def observe(self, names: list[str]) -> dict[str, ObservedTopic]: ...
    async def create(self, spec: TopicSpec) -> None: ...
    async def grow(self, name: str, partitions: int) -> None: ...


class KafkaTopicAdmin:
    """A real Kafka cluster, through aiokafka's admin client."""

    def __init__(self, admin: AIOKafkaAdminClient) -> None:
        self.admin = admin

    async def brokers(self) -> int:
        return len((await self.admin.describe_cluster())["brokers"])

    async def observe(self, names: list[str]) -> dict[str, ObservedTopic]:
        # Describe only topics that exist: a metadata request for a missing topic makes
        # brokers with auto-creation create it with their defaults.
        existing = [n for n in names if n in set(await self.admin.list_topics())]
        if not existing:
            return {}
        described = await self.admin.describe_topics(existing)
        configs = await self._configs(existing)
        observed = {}
        for topic in described:
            if topic["error_code"]:
                raise TopicsError(
                    f"describing {topic['topic']} failed: error {topic['error_code']}"
                )
            partitions = topic["partitions"]
            observed[topic["topic"]] = ObservedTopic(
                topic["topic"],
                len(partitions),
                len(partitions[0]["replicas"]) if partitions else 0,
                configs.get(topic["topic"]) if configs is not None else None,
            )
        return observed

    async def _configs(self, names: list[str]) -> dict[str, dict[str, str]] | None:
        try:
            responses = await self.admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
            )
        except IncompatibleBrokerVersion:
            return None
        result: dict[str, dict[str, str]] = {}
        for response in responses:
            for resource in response.resources:
                error_code, _message, _type, name, entries = resource[:5]
                if error_code:
                    # e.g. 29: the services' own users need not have DescribeConfigs; only
                    # the migration job's apply must see configs to report drift
                    log.warning("cannot describe the configs of %s: error %s", name, error_code)
                    continue
                result[name] = {entry[0]: entry[1] for entry in entries}
        return result

    async def create(self, spec: TopicSpec) -> None:
        try:
            response = await self.admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        spec.partitions,
                        spec.replication_factor,
                        topic_configs=dict(spec.configs),
                    )
                ]
            )
        except (IncompatibleBrokerVersion, AttributeError) as exc:
            # AttributeError: aiokafka found no controller in the metadata (the mock has none)
            raise TopicsError(
                f"cannot create {spec.name}: the broker does not offer the CreateTopics API "
                "(the librdkafka mock cluster does not; start it with `microhub kafka embedded`, "
                "which creates the topics itself)"
            ) from exc
        for error in response.topic_errors:
            name, code = error[0], error[1]
            if code == TOPIC_AUTHORIZATION_FAILED:
                # A service's own principal lands here: it may describe the topics but
                # not create them (infra/acls.yaml), and the topic is not there.
                raise TopicsError(
                    f"topic {name} is missing (or this principal may not describe it) and "
                    "this principal may not create it: create the topics first with "
                    "`microhub topics apply` as the migration principal (a carrier's: "
                    "`microhub carriers apply`)"
                )
            if code and code != TOPIC_ALREADY_EXISTS:
                message = error[2] if len(error) > 2 else ""
                raise TopicsError(f"creating {name} failed: error {code} {message}")

    async def grow(self, name: str, partitions: int) -> None:
        try:
            await self.admin.create_partitions({name: NewPartitions(total_count=partitions)})
        except (IncompatibleBrokerVersion, AttributeError) as exc:
            raise TopicsError(
                f"cannot grow {name}: the broker does not offer the CreatePartitions API"
            ) from exc
        except KafkaError as exc:  # e.g. not authorised: a service's user may not alter
            raise TopicsError(f"cannot grow {name}: {exc}") from exc


class EmbeddedTopicAdmin:
    """The in-process mock cluster: created through its C API, configs remembered here
    (the mock keeps none), partitions cannot be added."""

    def __init__(self, embedded: Any, admin: AIOKafkaAdminClient) -> None:
        self.embedded = embedded
        self.kafka = KafkaTopicAdmin(admin)

    async def brokers(self) -> int:
        return self.embedded.brokers

    async def observe(self, names: list[str]) -> dict[str, ObservedTopic]:
        observed = await self.kafka.observe(names) if names else {}
        known = self.embedded.topic_configs
        return {
            name: ObservedTopic(o.name, o.partitions, o.replication_factor, known.get(name))
            for name, o in observed.items()
        }

    async def create(self, spec: TopicSpec) -> None:
        self.embedded.create_topic(
            spec.name, spec.partitions, spec.replication_factor, configs=dict(spec.configs)
        )

    async def grow(self, name: str, partitions: int) -> None:
        raise TopicsError(
            f"cannot grow {name} to {partitions} partitions: the embedded mock cluster "
            "cannot add partitions to a topic (a real Kafka can)"
        )


async def _until_listed(admin: AIOKafkaAdminClient, names: set[str], timeout: float = 30.0):
    """Until the brokers' metadata lists the topics just created: the controller accepted
    them a moment before. Without this a service started right after the migration job
    could miss one, try to create it and, with its ACLs, stop as if it were missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not names <= set(await admin.list_topics()):
        if loop.time() > deadline:
            log.warning("created topics not yet listed by the brokers after %.0f s", timeout)
            return
        await asyncio.sleep(0.05)


def platform_topics(settings: Settings) -> list[TopicSpec]:
    """The topics file's topics and those of the carriers of MICROHUB_CARRIERS_FILE."""
    from services.runtime.carriers import file_topic_specs

    return load_topics(topics_file(settings)) + file_topic_specs(settings)


def _prefixed(specs: Iterable[TopicSpec], settings: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(settings.topic(s.name), s.partitions, s.replication_factor, s.configs)
        for s in specs
    ]


async def apply_topics(
    settings: Settings,
    bootstrap: list[str],
    *,
    embedded: Any = None,
    specs: list[TopicSpec] | None = None,
    dry_run: bool = False,
) -> Plan:
    """Bring the cluster's topics up to the file (with ``settings.kafka_topic_prefix``)."""
    if specs is None:
        specs = platform_topics(settings)
    desired = _prefixed(specs, settings)
    admin_client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=f"{settings.kafka_client_id}-topics",
        request_timeout_ms=30_000,
        **(aiokafka_security_kwargs(settings) if embedded is None else {}),
    )
    await admin_client.start()
    try:
        admin: TopicAdmin = (
            EmbeddedTopicAdmin(embedded, admin_client)
            if embedded is not None
            else KafkaTopicAdmin(admin_client)
        )
        observed = await admin.observe([s.name for s in desired])
        result = plan(desired, observed, brokers=await admin.brokers())
        if dry_run:
            return result
        for change in result.changes:
            if change.kind == "create" and change.spec is not None:
                await admin.create(change.spec)
                change.done = True
                log.info("created topic %s (%s)", change.topic, change.detail)
            elif change.kind == "grow" and change.spec is not None:
                try:
                    await admin.grow(change.topic, change.spec.partitions)
                except TopicsError as exc:
                    change.detail += f" (not done: {exc})"
                    log.warning("%s", exc)
                    continue
                change.done = True
                log.info("grew topic %s (%s)", change.topic, change.detail)
            elif change.kind in ("drift", "shrink-refused"):
                log.warning(
                    "topic %s drifted from the topics file: %s", change.topic, change.detail
                )
        if embedded is None and result.created:
            await _until_listed(admin_client, set(result.created))
        return result
    finally:
        await admin_client.close()
