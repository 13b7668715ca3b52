"""ACLs as code: ``infra/acls.yaml`` read into principals and their grants, and the pure
plan of what ``acl_admin.apply_acls`` must change on a cluster.

A *principal* is one Kafka user (SCRAM) with the operations it may perform on topics,
consumer groups and the cluster; each (user, resource, pattern, operation) is a *grant*,
one ACL binding on the broker. The file names resources without the environment's topic
prefix; :func:`grants` prepends ``MICROHUB_KAFKA_TOPIC_PREFIX`` to every topic, group and
user name, so one file serves every environment (and every test run) on a shared cluster.

Like ``topics.plan``, :func:`plan` is pure: what to create, what is already there, and
what the cluster has beyond the file (*extra*, reported and deleted only on request).
Observing and changing the cluster is in ``acl_admin``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from contracts.topics import CARRIER_TOPICS

REPO_ACLS_FILE = Path(__file__).resolve().parents[2] / "infra" / "acls.yaml"
CLUSTER = "kafka-cluster"  # the one name a cluster resource has in Kafka
# What this platform's resources are called (before the prefix): extra ACLs are looked
# for among these, so a principal removed from the file is still noticed.
NAMESPACE = "microhub"
# Carriers' principals come from the carrier registry (services/runtime/carriers.py) and
# are `carriers apply`'s business: the file may not name one, and `acls apply` neither
# reports nor deletes their ACLs.
CARRIER_USER_PREFIX = f"{NAMESPACE}-carrier-"
CARRIER_PRINCIPAL_PREFIX = "carrier-"

ResourceType = Literal["topic", "group", "cluster"]
PatternType = Literal["literal", "prefixed"]

# Kafka's operations by the resource types they apply to (kafka.security.authorizer docs)
OPERATIONS: dict[ResourceType, tuple[str, ...]] = {
    "topic": (
        "Read",
        "Write",
        "Describe",
        "Create",
        "Delete",
        "Alter",
        "DescribeConfigs",
        "AlterConfigs",
        "All",
    ),
    "group": ("Read", "Describe", "Delete", "All"),
    "cluster": (
        "Describe",
        "Create",
        "Alter",
        "DescribeConfigs",
        "AlterConfigs",
        "IdempotentWrite",
        "ClusterAction",
        "All",
    ),
}
SECTIONS: dict[str, ResourceType] = {"topics": "topic", "groups": "group", "cluster": "cluster"}


class AclsError(RuntimeError):
    """The ACL file or a passwords file is wrong, or the cluster refused a change."""


@dataclass(frozen=True)
class Permission:
    """Operations on one resource (or resource prefix) as the file states them."""

    resource: ResourceType
    name: str  # without the topic prefix; for prefixed patterns, without the '*'
    pattern: PatternType
    operations: tuple[str, ...]

    @property
    def shown(self) -> str:
        return f"{self.name}*" if self.pattern == "prefixed" else self.name


@dataclass(frozen=True)
class Principal:
    key: str  # the file's name for it: booking, dispatch, …, carrier-acme
    user: str  # the SCRAM user name, without the topic prefix
    description: str = ""
    permissions: tuple[Permission, ...] = ()


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL binding: ``principal`` may (or may not) ``operation`` on a resource."""

    principal: str  # "User:<name>"
    resource: str  # topic, group, cluster (or what the broker calls others)
    name: str
    pattern: str  # literal, prefixed (or what the broker calls others)
    operation: str
    host: str = "*"
    permission: str = "Allow"

    def __str__(self) -> str:
        name = f"{self.name}*" if self.pattern == "prefixed" else self.name
        where = "" if self.host == "*" else f" from {self.host}"
        verb = "" if self.permission == "Allow" else f"{self.permission} "
        return f"{self.principal}: {verb}{self.operation} {self.resource} {name}{where}"


# --- the file -------------------------------------------------------------------------


def load_acls(path: Path | None = None) -> list[Principal]:
    """Parse an ACL file (default: the repository's ``infra/acls.yaml``); every mistake
    is named with the principal and resource it is in."""
    path = path or REPO_ACLS_FILE
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise AclsError(f"cannot read the ACL file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise AclsError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("principals"), dict):
        raise AclsError(f"{path}: expected a mapping with a 'principals' mapping")
    unknown = set(raw) - {"principals"}
    if unknown:
        raise AclsError(f"{path}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}")
    principals = [_principal(path, key, entry) for key, entry in raw["principals"].items()]
    users: dict[str, str] = {}
    for principal in principals:
        if principal.user in users:
            raise AclsError(
                f"{path}: principals {users[principal.user]!r} and {principal.key!r} "
                f"are the same user {principal.user!r}"
            )
        users[principal.user] = principal.key
    return principals


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: what is wrong and where (PyYAML's message spans several)."""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def _principal(path: Path, key: object, entry: object) -> Principal:
    where = f"{path}: principal {key!r}"
    if not isinstance(key, str) or not key:
        raise AclsError(f"{where}: a principal's name must be a non-empty string")
    if key.startswith(CARRIER_PRINCIPAL_PREFIX):
        raise AclsError(
            f"{where}: carriers are principals of the carrier registry "
            "(MICROHUB_CARRIERS_FILE, `microhub carriers apply`), not of this file"
        )
    if not isinstance(entry, dict):
        raise AclsError(f"{where}: expected a mapping (user, description, topics, groups, cluster)")
    unknown = set(entry) - {"user", "description", *SECTIONS}
    if unknown:
        raise AclsError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    user = entry.get("user", f"{NAMESPACE}-{key}")
    if not isinstance(user, str) or not user.strip() or user != user.strip():
        raise AclsError(f"{where}: user must be a non-empty name without spaces, not {user!r}")
    if user.startswith(CARRIER_USER_PREFIX):
        raise AclsError(f"{where}: user names {CARRIER_USER_PREFIX}… are the carriers'")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise AclsError(f"{where}: description must be text")
    permissions: list[Permission] = []
    for section, resource in SECTIONS.items():
        value = entry.get(section)
        if value is None:
            continue
        if resource == "cluster":
            permissions.append(
                Permission("cluster", CLUSTER, "literal", _operations(where, "cluster", value))
            )
            continue
        if not isinstance(value, dict):
            raise AclsError(f"{where}: {section} must map {resource} names to operation lists")
        for name, operations in value.items():
            permissions.append(_permission(where, resource, name, operations))
    if not permissions:
        raise AclsError(f"{where} has no permissions (topics, groups or cluster)")
    return Principal(key, user, description, tuple(permissions))


def _permission(where: str, resource: ResourceType, name: object, operations: object) -> Permission:
    if not isinstance(name, str) or not name.strip("*"):
        raise AclsError(
            f"{where}: {resource} name {name!r} must be a name or a prefix ending in '*'"
        )
    if "*" in name[:-1]:
        raise AclsError(f"{where}: {resource} {name!r}: '*' may only end a name (a prefix)")
    pattern: PatternType = "prefixed" if name.endswith("*") else "literal"
    return Permission(
        resource,
        name.rstrip("*"),
        pattern,
        _operations(f"{where}: {resource} {name!r}", resource, operations),
    )


def _operations(where: str, resource: ResourceType, operations: object) -> tuple[str, ...]:
    if not isinstance(operations, list) or not operations:
        raise AclsError(f"{where}: expected a non-empty list of operations, not {operations!r}")
    allowed = OPERATIONS[resource]
    for operation in operations:
        if operation not in allowed:
            raise AclsError(
                f"{where}: {operation!r} is not an operation on a {resource} "
                f"(choose from {', '.join(allowed)})"
            )
    if len(set(operations)) != len(operations):
        raise AclsError(f"{where}: an operation is listed twice in {operations}")
    return tuple(operations)


def load_passwords(path: Path, principals: Iterable[Principal]) -> dict[str, str]:
    """A YAML mapping of principal name -> SCRAM password (a mounted Secret, never a file
    in the repository). Returns them by principal name."""
    known = {p.key for p in principals}
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise AclsError(f"cannot read the passwords file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise AclsError(f"the passwords file {path} is not valid YAML") from exc
    if not isinstance(raw, dict):
        raise AclsError(f"{path}: expected a mapping of principal name to password")
    passwords: dict[str, str] = {}
    for key, password in raw.items():
        if key not in known:
            raise AclsError(
                f"{path}: {key!r} is no principal of the ACL file "
                f"(principals: {', '.join(sorted(known))})"
            )
        if not isinstance(password, str) or not password:
            raise AclsError(f"{path}: the password of {key!r} must be a non-empty string")
        passwords[key] = password
    return passwords


# --- grants (with the environment's prefix) ----------------------------------------------


def user_name(principal: Principal, prefix: str) -> str:
    return f"{prefix}{principal.user}"


def grants(principals: Iterable[Principal], prefix: str) -> list[Grant]:
    """Every ACL binding the file asks for, with ``prefix`` on users, topics and groups."""
    result: set[Grant] = set()
    for principal in principals:
        who = f"User:{user_name(principal, prefix)}"
        for permission in principal.permissions:
            name = permission.name if permission.resource == "cluster" else prefix + permission.name
            for operation in permission.operations:
                result.add(Grant(who, permission.resource, name, permission.pattern, operation))
    return sorted(result)


def in_scope(grant: Grant, principals: Iterable[Principal], prefix: str) -> bool:
    """Is an ACL on the cluster this file's business? Yes when it is for one of the file's
    users, or on a topic or group of this environment's namespace (``<prefix>microhub…``),
    such as what a principal since removed from the file had."""
    users = {f"User:{user_name(p, prefix)}" for p in principals}
    if on_carrier_topic(grant, prefix):  # one carrier's topic: the registry decides it
        return grant in grants(principals, prefix)
    if grant.principal.startswith(f"User:{prefix}{CARRIER_USER_PREFIX}"):
        return grant.principal in users  # a carrier's: only when planning the carriers
    return grant.principal in users or (
        grant.resource in ("topic", "group") and grant.name.startswith(prefix + NAMESPACE)
    )


def on_carrier_topic(grant: Grant, prefix: str) -> bool:
    """Is this an ACL on exactly one carrier's own topic (a literal name, not the carriers'
    namespace)? ``carriers apply``'s business, whoever's it is: the registry decides them."""
    return (
        grant.resource == "topic"
        and grant.pattern == "literal"
        and any(t.carrier_of(grant.name, prefix) is not None for t in CARRIER_TOPICS)
    )


# --- the plan (pure) --------------------------------------------------------------------


UserState = Literal["create", "present", "no-password"]


@dataclass
class UserChange:
    principal: str  # the file's name
    user: str  # with the prefix
    state: UserState
    done: bool = False


@dataclass
class AclPlan:
    missing: list[Grant]  # in the file, not on the cluster: to create
    present: list[Grant]  # in the file and on the cluster
    extra: list[Grant]  # on the cluster, in scope, not in the file: reported
    users: list[UserChange] = field(default_factory=list)
    created: list[Grant] = field(default_factory=list)
    deleted: list[Grant] = field(default_factory=list)
    deleted_users: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.missing or any(u.state == "create" for u in self.users))


def plan(
    principals: list[Principal],
    observed: Iterable[Grant],
    *,
    prefix: str,
    existing_users: Iterable[str] = (),
    passwords: Mapping[str, str] | None = None,
    scope: Callable[[Grant], bool] | None = None,
) -> AclPlan:
    """Compare the file (with ``prefix``) with the ACLs and SCRAM users on the cluster.
    ``scope``: which ACLs on the cluster are the plan's business (default ``in_scope``)."""
    wanted = grants(principals, prefix)
    mine = scope or (lambda g: in_scope(g, principals, prefix))
    seen = {g for g in observed if mine(g)}
    existing = set(existing_users)
    users = []
    for principal in principals:
        user = user_name(principal, prefix)
        if user in existing:
            state: UserState = "present"
        elif passwords and principal.key in passwords:
            state = "create"
        else:
            state = "no-password"
        users.append(UserChange(principal.key, user, state))
    return AclPlan(
        missing=[g for g in wanted if g not in seen],
        present=[g for g in wanted if g in seen],
        extra=sorted(seen - set(wanted)),
        users=users,
    )


# --- the documentation table --------------------------------------------------------------


def markdown_table(principals: Iterable[Principal]) -> str:
    """The table docs/deploy.md shows (a test checks that it is this file's)."""
    lines = [
        "| principal (user) | topics | groups | cluster |",
        "| --- | --- | --- | --- |",
    ]
    for principal in principals:
        cells = []
        for resource in ("topic", "group", "cluster"):
            by_operation: dict[str, list[str]] = {}
            for permission in principal.permissions:
                if permission.resource != resource:
                    continue
                for operation in permission.operations:
                    shown = "" if resource == "cluster" else f"`{permission.shown}`"
                    by_operation.setdefault(operation, []).append(shown)
            # operations on the same names share a part: "Create, Alter `microhub.*`"
            by_names: dict[tuple[str, ...], list[str]] = {}
            for operation, names in by_operation.items():
                by_names.setdefault(tuple(names), []).append(operation)
            parts = [
                f"{', '.join(ops)} {', '.join(names)}".strip() for names, ops in by_names.items()
            ]
            cells.append("; ".join(parts) or "\N{EN DASH}")
        lines.append(f"| {principal.key} (`{principal.user}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
