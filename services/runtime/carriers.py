"""Carriers as code: the registry file (``MICROHUB_CARRIERS_FILE``) read into carriers, and
what each one is on a Kafka cluster: a SCRAM user, its topics (the templates of the topics
file's ``carrier_topics``) and its ACLs, as ``acls.Principal`` objects, so that ``acl_admin``
plans and applies them like the platform's own; and the Strimzi resources of the same.

A carrier's principal may write its commands topic and read its events topic (literal
ACLs: a prefix ``microhub.carriers.<id>.commands.`` would take in its dead letters too),
and use any consumer group named ``microhub.carriers.<id>.…`` (a prefixed ACL). Nothing
else: no internal topic, no other carrier's. Carrier ids cannot contain a dot, so no
carrier's prefix is another's.

The HTTP API writes carriers' commands onto their own topics, like their Kafka clients
(services/booking/http_commands.py): its platform principal (``api`` in
``infra/acls.yaml``) gets a literal Write on each active carrier's commands topic, and
nothing on a carrier's events topic. Those ACLs change with the registry, so they are
``carriers apply``'s too (``platform_writer``).

The platform's principals in ``infra/acls.yaml`` and the carriers' are kept apart: ``acls
apply`` manages the file's users, ``carriers apply`` the users named
``microhub-carrier-<id>`` and the ACLs on a carrier's own topics (neither reports or
deletes the other's ACLs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contracts.topics import CARRIER_COMMANDS, CARRIER_EVENTS, CARRIER_ID_PATTERN
from services.runtime.acls import (
    CARRIER_PRINCIPAL_PREFIX,
    CARRIER_USER_PREFIX,
    Grant,
    Permission,
    Principal,
    load_acls,
    on_carrier_topic,
)
from services.runtime.settings import Settings
from services.runtime.topics import (
    TopicSpec,
    expand_carrier_topics,
    load_carrier_topics,
    topics_file,
)
from services.runtime.yamlfile import load_listing

SAMPLE_CARRIERS_FILE = Path(__file__).parent / "data" / "carriers.yaml"
USER_PREFIX = CARRIER_USER_PREFIX  # + carrier id: the carrier's SCRAM user
PRINCIPAL_PREFIX = CARRIER_PRINCIPAL_PREFIX  # + carrier id: its name among the principals


class CarriersError(ValueError):
    """The carrier registry file is wrong."""


@dataclass(frozen=True)
class Carrier:
    id: str
    name: str
    active: bool = True

    def __post_init__(self) -> None:
        check_carrier_id(self.id)


def check_carrier_id(carrier_id: object) -> str:
    if not isinstance(carrier_id, str) or not re.fullmatch(CARRIER_ID_PATTERN, carrier_id):
        raise CarriersError(
            f"{carrier_id!r} is not a carrier id: lowercase letters, digits and inner "
            "hyphens, 1 to 32 characters (it is part of topic, group and user names)"
        )
    return carrier_id


def carriers_file(settings: Settings) -> Path:
    return settings.carriers_file or SAMPLE_CARRIERS_FILE


def load_carriers(path: Path) -> list[Carrier]:
    """Parse a registry file; every mistake is named with its entry."""
    document = load_listing(path, what="carrier registry", key="carriers", error=CarriersError)
    carriers: dict[str, Carrier] = {}
    for index, entry in enumerate(document["carriers"], start=1):
        where = f"{path}: carrier #{index}"
        if not isinstance(entry, dict):
            raise CarriersError(f"{where}: expected a mapping with id and name")
        unknown = set(entry) - {"id", "name", "active"}
        if unknown:
            raise CarriersError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        try:
            carrier = Carrier(
                id=check_carrier_id(entry.get("id")),
                name=str(entry.get("name") or entry.get("id")),
                active=bool(entry.get("active", True)),
            )
        except CarriersError as exc:
            raise CarriersError(f"{where}: {exc}") from exc
        if carrier.id in carriers:
            raise CarriersError(f"{where}: carrier {carrier.id!r} is listed twice")
        carriers[carrier.id] = carrier
    return list(carriers.values())


# --- on a cluster ----------------------------------------------------------------------


def user_of(carrier_id: str) -> str:
    """The carrier's SCRAM user, without the environment's topic prefix."""
    return USER_PREFIX + carrier_id


def group_prefix(carrier_id: str) -> str:
    """Consumer groups the carrier may use start with this (without the topic prefix)."""
    return f"microhub.carriers.{carrier_id}."


def principal(carrier_id: str) -> Principal:
    return Principal(
        key=PRINCIPAL_PREFIX + carrier_id,
        user=user_of(carrier_id),
        description=f"carrier {carrier_id}: writes its commands, reads its events",
        permissions=(
            Permission("topic", CARRIER_COMMANDS.for_carrier(carrier_id), "literal", ("Write",)),
            Permission("topic", CARRIER_EVENTS.for_carrier(carrier_id), "literal", ("Read",)),
            Permission("group", group_prefix(carrier_id), "prefixed", ("Read",)),
        ),
    )


# the principal of infra/acls.yaml that writes every active carrier's commands topic
PLATFORM_WRITER = "api"


def platform_writer(carriers: Iterable[Carrier], acls_file: Path | None = None) -> Principal:
    """The HTTP API's principal, with Write on each active carrier's commands topic only
    (its other ACLs are the file's, ``acls apply``'s)."""
    [api] = [p for p in load_acls(acls_file) if p.key == PLATFORM_WRITER]
    return Principal(
        key=api.key,
        user=api.user,
        description="the HTTP API: writes carriers' commands onto their own topics",
        permissions=tuple(
            Permission("topic", CARRIER_COMMANDS.for_carrier(c.id), "literal", ("Write",))
            for c in carriers
            if c.active
        ),
    )


def principals(carriers: Iterable[Carrier], acls_file: Path | None = None) -> list[Principal]:
    """The principals of the active carriers (an inactive one keeps no ACL), and the
    platform's writer of their commands topics."""
    carriers = list(carriers)
    return [principal(c.id) for c in carriers if c.active] + [platform_writer(carriers, acls_file)]


def is_carrier_grant(grant: Grant, prefix: str) -> bool:
    """Is this ACL ``carriers apply``'s business: a carrier principal's, or one on a single
    carrier's own topic (the platform writer's)?"""
    return grant.principal.startswith(f"User:{prefix}{USER_PREFIX}") or on_carrier_topic(
        grant, prefix
    )


def topic_specs(settings: Settings, carrier_ids: Iterable[str]) -> list[TopicSpec]:
    """Every topic of these carriers, from the topics file's templates (no prefix yet)."""
    return expand_carrier_topics(load_carrier_topics(topics_file(settings)), carrier_ids)


def file_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics of the active carriers of ``MICROHUB_CARRIERS_FILE``: what every process
    applies on start with the platform's own (the embedded cluster creates them)."""
    carriers = load_carriers(carriers_file(settings))
    return topic_specs(settings, [c.id for c in carriers if c.active])


# --- Strimzi ---------------------------------------------------------------------------


def _strimzi_user(
    user: str, permissions: Iterable[Permission], *, cluster: str, labels: dict[str, str]
) -> dict[str, Any]:
    acls = []
    # Strimzi's name for a prefixed pattern is "prefix"
    pattern = {"prefixed": "prefix", "literal": "literal"}
    for permission in permissions:
        for operation in permission.operations:
            resource: dict[str, str] = {"type": permission.resource}
            if permission.resource != "cluster":
                resource |= {
                    "name": permission.name,
                    "patternType": pattern[permission.pattern],
                }
            acls.append({"resource": resource, "operations": [operation], "host": "*"})
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": {
            "name": user,
            "labels": {
                "strimzi.io/cluster": cluster,
                "app.kubernetes.io/part-of": "microhub",
                **labels,
            },
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def strimzi_users(
    carriers: Iterable[Carrier], *, cluster: str, acls_file: Path | None = None
) -> list[dict[str, Any]]:
    """A Strimzi ``KafkaUser`` per active carrier: SCRAM-SHA-512 and exactly its ACLs
    (the User Operator creates the password in a Secret of the same name); and the HTTP
    API's, whose ACLs (its file's and a Write on each carrier's commands topic) follow
    the registry: Strimzi keeps a user's ACLs in one resource."""
    carriers = list(carriers)
    documents = [
        _strimzi_user(
            user_of(c.id),
            principal(c.id).permissions,
            cluster=cluster,
            labels={"microhub.dev/carrier": c.id},
        )
        for c in carriers
        if c.active
    ]
    [api] = [p for p in load_acls(acls_file) if p.key == PLATFORM_WRITER]
    writer = platform_writer(carriers, acls_file)
    documents.append(
        _strimzi_user(
            api.user,
            (*api.permissions, *writer.permissions),
            cluster=cluster,
            labels={"microhub.dev/platform-principal": api.key},
        )
    )
    return documents


def strimzi_manifest(settings: Settings, carriers: list[Carrier], *, cluster: str) -> str:
    """``KafkaUser`` and ``KafkaTopic`` resources of the registry's active carriers."""
    from services.runtime.topics import strimzi_topics

    active = [c.id for c in carriers if c.active]
    documents = strimzi_users(carriers, cluster=cluster)
    documents += strimzi_topics(topic_specs(settings, active), cluster=cluster)
    header = (
        "# GENERATED from the carrier registry (MICROHUB_CARRIERS_FILE) and the carrier_topics\n"
        "# of infra/topics.yaml by `microhub carriers strimzi -o infra/k8s/carriers.yaml`;\n"
        "# do not edit (tests/infra checks it is current).\n"
    )
    return header + yaml.safe_dump_all(documents, sort_keys=False)
