"""Topics as code: ``infra/topics.yaml`` applied through the Kafka admin API.

``apply_topics`` creates missing topics, grows partition counts, and *reports* (never
fixes) configuration drift; it never deletes a topic and never shrinks one (Kafka cannot,
and deleting would lose events). Running it twice changes nothing the second time.

Three callers share it: ``microhub topics apply`` (the migration Job / compose one-shot),
every process on start (``KafkaCluster.start``), and the test fixtures (with the per-test
topic prefix). The planning step (``plan``) is pure, so its rules are unit-tested without
a broker; the admin backends only observe and execute.

The librdkafka mock cluster (the embedded broker) implements neither CreateTopics,
CreatePartitions nor DescribeConfigs, so when this process owns it we create topics
through its C API and remember their configs ourselves; it cannot add partitions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion, KafkaError

from contracts.topics import TOPICS
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

REPO_TOPICS_FILE = Path(__file__).resolve().parents[2] / "infra" / "topics.yaml"
TOPIC_ALREADY_EXISTS = 36
CONFIG_KEYS_WE_OWN = ("min.insync.replicas", "retention.ms", "cleanup.policy")


class TopicsError(RuntimeError):
    """The topics file is wrong, or the cluster refused a change."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 3
    configs: Mapping[str, str] = field(default_factory=dict)


# --- the file -------------------------------------------------------------------------


def topics_file(settings: Settings | None = None) -> Path | None:
    """``MICROHUB_TOPICS_FILE``, else the repository's ``infra/topics.yaml`` if present."""
    if settings is not None and settings.topics_file is not None:
        return settings.topics_file
    return REPO_TOPICS_FILE if REPO_TOPICS_FILE.is_file() else None


def from_contracts() -> list[TopicSpec]:
    """The fallback when no topics file is installed: names and partitions only."""
    specs = []
    for topic in TOPICS:
        specs.append(TopicSpec(topic.name, topic.partitions))
        specs.append(TopicSpec(topic.dlq, 1))
    return specs


def load_topics(path: Path | None) -> list[TopicSpec]:
    """Parse a topics file; every mistake is named with the topic it is in."""
    if path is None:
        return from_contracts()
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise TopicsError(f"cannot read the topics file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TopicsError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("topics"), list):
        raise TopicsError(f"{path}: expected a mapping with a 'topics' list")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise TopicsError(f"{path}: 'defaults' must be a mapping")
    specs: list[TopicSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw["topics"]):
        where = f"{path}: topics[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TopicsError(f"{where}: each topic needs a 'name'")
        name = entry["name"]
        where = f"{path}: topic {name!r}"
        if name in seen:
            raise TopicsError(f"{where} is listed twice")
        seen.add(name)
        unknown = set(entry) - {"name", "partitions", "replication_factor", "configs"}
        if unknown:
            raise TopicsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        partitions = entry.get("partitions", defaults.get("partitions"))
        replication = entry.get("replication_factor", defaults.get("replication_factor", 3))
        for label, value in (("partitions", partitions), ("replication_factor", replication)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TopicsError(f"{where}: {label} must be a positive integer, not {value!r}")
        configs = dict(defaults.get("configs") or {}) | dict(entry.get("configs") or {})
        for key, value in configs.items():
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise TopicsError(f"{where}: config {key} must be a string, not {value!r}")
        specs.append(
            TopicSpec(name, partitions, replication, {k: str(v) for k, v in configs.items()})
        )
    return specs


# --- the plan (pure) --------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedTopic:
    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] | None  # None: the broker cannot tell us


ChangeKind = Literal["create", "grow", "drift", "shrink-refused", "configs-unknown", "capped"]


@dataclass
class Change:
    kind: ChangeKind
    topic: str
    detail: str
    spec: TopicSpec | None = None
    done: bool = False


@dataclass
class Plan:
    changes: list[Change]
    names: list[str] = field(default_factory=list)

    def of(self, kind: ChangeKind) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def created(self) -> list[str]:
        return [c.topic for c in self.of("create") if c.done]

    @property
    def grown(self) -> list[str]:
        return [c.topic for c in self.of("grow") if c.done]

    @property
    def drift(self) -> list[Change]:
        return self.of("drift") + self.of("shrink-refused")

    @property
    def unchanged(self) -> int:
        """How many topics needed no create, grow or had no drift."""
        touched = {c.topic for c in self.changes if c.kind not in ("capped", "configs-unknown")}
        return len({c.topic for c in self.changes} | set(self.names)) - len(touched)

    @property
    def failed(self) -> list[Change]:
        return [c for c in self.changes if c.kind in ("create", "grow") and not c.done]


def effective(spec: TopicSpec, brokers: int) -> TopicSpec:
    """Replication capped to the brokers there are (one-broker compose, the embedded
    cluster), and ``min.insync.replicas`` to the replication, or no write would ever be
    acknowledged with acks=all."""
    replication = min(spec.replication_factor, max(brokers, 1))
    configs = dict(spec.configs)
    if "min.insync.replicas" in configs:
        configs["min.insync.replicas"] = str(min(int(configs["min.insync.replicas"]), replication))
    return TopicSpec(spec.name, spec.partitions, replication, configs)


def plan(desired: list[TopicSpec], observed: Mapping[str, ObservedTopic], *, brokers: int) -> Plan:
    changes: list[Change] = []
    for wanted in desired:
        spec = effective(wanted, brokers)
        if spec.replication_factor < wanted.replication_factor:
            changes.append(
                Change(
                    "capped",
                    spec.name,
                    f"replication factor {wanted.replication_factor} reduced to "
                    f"{spec.replication_factor}: the cluster has {brokers} broker(s)",
                    spec,
                    done=True,
                )
            )
        seen = observed.get(spec.name)
        if seen is None:
            changes.append(
                Change(
                    "create",
                    spec.name,
                    f"{spec.partitions} partitions, rf {spec.replication_factor}",
                    spec,
                )
            )
            continue
        if seen.partitions < spec.partitions:
            changes.append(
                Change(
                    "grow", spec.name, f"partitions {seen.partitions} -> {spec.partitions}", spec
                )
            )
        elif seen.partitions > spec.partitions:
            changes.append(
                Change(
                    "shrink-refused",
                    spec.name,
                    f"has {seen.partitions} partitions, the file says {spec.partitions}; "
                    "Kafka cannot remove partitions: raise the file's count",
                    spec,
                )
            )
        if seen.replication_factor != spec.replication_factor:
            changes.append(
                Change(
                    "drift",
                    spec.name,
                    f"replication factor is {seen.replication_factor}, "
                    f"the file says {spec.replication_factor}",
                    spec,
                )
            )
        if seen.configs is None:
            if spec.configs:
                changes.append(
                    Change("configs-unknown", spec.name, "the broker cannot describe configs", spec)
                )
            continue
        for key, value in sorted(spec.configs.items()):
            actual = seen.configs.get(key)
            if actual != value:
                changes.append(
                    Change(
                        "drift", spec.name, f"{key} is {actual!r}, the file says {value!r}", spec
                    )
                )
    return Plan(changes, [s.name for s in desired])


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
    from services.runtime.kafka import aiokafka_security_kwargs

    if specs is None:
        specs = load_topics(topics_file(settings))
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
        return result
    finally:
        await admin_client.close()


def strimzi_manifest(specs: Iterable[TopicSpec], *, cluster: str) -> str:
    """Strimzi ``KafkaTopic`` resources (one YAML document each) for these topics.

    Kafka topic names may hold dots; Kubernetes names may not hold capitals or
    underscores, so the resource name is derived and the topic name set explicitly.
    """
    documents = []
    for spec in specs:
        documents.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaTopic",
                "metadata": {
                    "name": spec.name.lower().replace("_", "-"),
                    "labels": {
                        "strimzi.io/cluster": cluster,
                        "app.kubernetes.io/part-of": "microhub",
                    },
                },
                "spec": {
                    "topicName": spec.name,
                    "partitions": spec.partitions,
                    "replicas": spec.replication_factor,
                    "config": dict(spec.configs),
                },
            }
        )
    header = (
        "# GENERATED from infra/topics.yaml by `microhub topics strimzi "
        "-o infra/k8s/kafka-topics.yaml`; do not edit (tests/infra checks it is current).\n"
    )
    return header + yaml.safe_dump_all(documents, sort_keys=False)
