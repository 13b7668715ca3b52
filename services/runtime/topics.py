"""Topics as code: ``infra/topics.yaml`` applied through the Kafka admin API.

``topic_admin.apply_topics`` creates missing topics, grows partition counts, and *reports* (never
fixes) configuration drift; it never deletes a topic and never shrinks one (Kafka cannot,
and deleting would lose events). Running it twice changes nothing the second time.

Three callers share it: ``microhub topics apply`` (the migration Job / compose one-shot),
every process on start (``KafkaCluster.start``), and the test fixtures (with the per-test
topic prefix). The planning step (``plan``) is pure, so its rules are unit-tested without
a broker; the admin backends only observe and execute.

Observing and changing the cluster is in ``topic_admin`` (aiokafka's admin client, or
the embedded mock's C API).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from contracts.topics import CARRIER, CARRIER_COMMANDS, CARRIER_EVENTS, TOPICS
from services.runtime.settings import Settings

REPO_TOPICS_FILE = Path(__file__).resolve().parents[2] / "infra" / "topics.yaml"


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
    """Parse a topics file's platform topics; every mistake is named with the topic it is in."""
    if path is None:
        return from_contracts()
    raw = _read(path)
    if not isinstance(raw.get("topics"), list):
        raise TopicsError(f"{path}: expected a mapping with a 'topics' list")
    return _specs(path, raw, "topics")


def load_carrier_topics(path: Path | None) -> list[TopicSpec]:
    """The file's ``carrier_topics``: templates whose name holds ``{carrier}``, one topic
    of each per carrier of the registry (``expand_carrier_topics``)."""
    if path is None:  # the ingress reads the commands: they have a DLQ
        return [
            TopicSpec(CARRIER_COMMANDS.name, CARRIER_COMMANDS.partitions),
            TopicSpec(CARRIER_COMMANDS.dlq, 1),
            TopicSpec(CARRIER_EVENTS.name, CARRIER_EVENTS.partitions),
        ]
    raw = _read(path)
    specs = _specs(path, raw, "carrier_topics") if raw.get("carrier_topics") else []
    for spec in specs:
        if CARRIER not in spec.name:
            raise TopicsError(f"{path}: carrier topic {spec.name!r} must name {CARRIER}")
    return specs


def expand_carrier_topics(
    templates: Iterable[TopicSpec], carriers: Iterable[str]
) -> list[TopicSpec]:
    """The templates' topics of each carrier (ids checked by the registry)."""
    return [
        TopicSpec(t.name.replace(CARRIER, c), t.partitions, t.replication_factor, t.configs)
        for c in carriers
        for t in templates
    ]


def _read(path: Path) -> dict:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise TopicsError(f"cannot read the topics file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TopicsError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TopicsError(f"{path}: expected a mapping with a 'topics' list")
    return raw


def _specs(path: Path, raw: dict, section: str) -> list[TopicSpec]:
    if not isinstance(raw.get(section), list):
        raise TopicsError(f"{path}: '{section}' must be a list")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise TopicsError(f"{path}: 'defaults' must be a mapping")
    specs: list[TopicSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw[section]):
        where = f"{path}: {section}[{index}]"
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
        partitions = _positive_int(
            where, "partitions", entry.get("partitions", defaults.get("partitions"))
        )
        replication = _positive_int(
            where,
            "replication_factor",
            entry.get("replication_factor", defaults.get("replication_factor", 3)),
        )
        configs = dict(defaults.get("configs") or {}) | dict(entry.get("configs") or {})
        for key, value in configs.items():
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise TopicsError(f"{where}: config {key} must be a string, not {value!r}")
        specs.append(
            TopicSpec(name, partitions, replication, {k: str(v) for k, v in configs.items()})
        )
    return specs


def _positive_int(where: str, label: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TopicsError(f"{where}: {label} must be a positive integer, not {value!r}")
    return value


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


def strimzi_manifest(specs: Iterable[TopicSpec], *, cluster: str) -> str:
    """Strimzi ``KafkaTopic`` resources (one YAML document each) for these topics."""
    header = (
        "# GENERATED from infra/topics.yaml by `microhub topics strimzi "
        "-o infra/k8s/kafka-topics.yaml`; do not edit (tests/infra checks it is current).\n"
    )
    return header + yaml.safe_dump_all(strimzi_topics(specs, cluster=cluster), sort_keys=False)


def strimzi_topics(specs: Iterable[TopicSpec], *, cluster: str) -> list[dict]:
    """Kafka topic names may hold dots; Kubernetes names may not hold capitals or
    underscores, so the resource name is derived and the topic name set explicitly."""
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
    return documents
