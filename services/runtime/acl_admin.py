"""Observing and changing a cluster's ACLs and SCRAM users: the admin side of
``apply_acls``, through confluent-kafka's ``AdminClient`` (aiokafka's admin client has no
SCRAM user API). What to change is decided by the pure ``acls.plan``.

It runs as a principal that may manage ACLs and users: ``Describe`` and ``Alter`` on the
cluster, which in practice means a super user. A request the broker accepted reaches its
authorizer through the metadata log a moment later, so ``apply_acls`` returns only once
the brokers answer with what it created (and without what it deleted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from services.runtime.acls import AclPlan, AclsError, Grant, Principal, plan
from services.runtime.kafka_security import librdkafka_security_config
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

SCRAM_ITERATIONS = 8192
SCRAM_MECHANISMS = {
    "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
    "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
}
_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "cluster": ResourceType.BROKER,
}
_UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN}


def _operation_name(operation: AclOperation) -> str:
    return "".join(word.capitalize() for word in operation.name.split("_"))  # DescribeConfigs


def _operation(name: str) -> AclOperation:
    return AclOperation["".join(f"_{c}" if c.isupper() else c for c in name).lstrip("_").upper()]


def to_binding(grant: Grant) -> AclBinding:
    # the file only has topics, groups and the cluster; an extra found on the cluster may
    # be on another kind (a transactional id) and must be deletable all the same
    resource = _RESOURCES.get(grant.resource) or ResourceType[grant.resource.upper()]
    return AclBinding(
        resource,
        grant.name,
        ResourcePatternType[grant.pattern.upper()],
        grant.principal,
        grant.host,
        _operation(grant.operation),
        AclPermissionType[grant.permission.upper()],
    )


def to_grant(binding: AclBinding) -> Grant:
    # a binding's fields are made enums when it is made (AclBinding._convert_args), but
    # confluent-kafka types them as the ``enum | str | int`` its constructor accepts
    restype, pattern = binding.restype, binding.resource_pattern_type
    operation, permission = binding.operation, binding.permission_type
    assert isinstance(restype, ResourceType) and isinstance(pattern, ResourcePatternType)
    assert isinstance(operation, AclOperation) and isinstance(permission, AclPermissionType)
    resource = {v: k for k, v in _RESOURCES.items()}.get(restype)
    return Grant(
        binding.principal,
        resource or restype.name.lower(),
        binding.name,
        pattern.name.lower(),
        _operation_name(operation),
        binding.host,
        permission.name.capitalize(),
    )


class KafkaAclAdmin:
    """A cluster's ACLs and SCRAM users, through the admin API."""

    def __init__(self, config: Mapping[str, Any], *, timeout: float = 30.0) -> None:
        # librdkafka's own log lines would repeat what the errors below already say
        self.admin = AdminClient(dict(config) | {"log_level": 0})
        self.timeout = timeout
        self.where = config.get("bootstrap.servers", "?")
        self.user = config.get("sasl.username", "ANONYMOUS")

    def check_allowed(self, *, change: bool) -> None:
        """Fail clearly unless this principal may describe (and, to ``change``, alter) the
        cluster's ACLs and users. Asked first because a refused DescribeAcls answers with
        no ACLs rather than an error, and a refused DescribeUserScramCredentials crashes
        confluent-kafka 2.16 (a double free on the error path)."""
        future = self.admin.describe_cluster(
            include_authorized_operations=True, request_timeout=self.timeout
        )
        cluster = self._result(future, "describing the cluster")
        needed = {AclOperation.DESCRIBE} | ({AclOperation.ALTER} if change else set())
        missing = needed - set(cluster.authorized_operations or [])
        if missing:
            names = " and ".join(sorted(_operation_name(op) for op in missing))
            raise AclsError(
                f"the principal {self.user!r} may not {'manage' if change else 'read'} ACLs "
                f"and SCRAM users: it lacks {names} on the cluster (run `acls apply` as a "
                "super user, through MICROHUB_KAFKA_SASL_USERNAME/_PASSWORD)"
            )

    def grants(self) -> list[Grant]:
        everything = AclBindingFilter(
            ResourceType.ANY,
            None,  # type: ignore[arg-type]  # None matches any (documented), but hinted as str
            ResourcePatternType.ANY,
            None,  # type: ignore[arg-type]  # None matches any (documented), but hinted as str
            None,  # type: ignore[arg-type]  # None matches any (documented), but hinted as str
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        future = self.admin.describe_acls(everything, request_timeout=self.timeout)
        bindings = self._result(future, "describing the ACLs")
        return sorted(to_grant(b) for b in bindings)

    def create(self, grants: Iterable[Grant]) -> None:
        bindings = [to_binding(g) for g in grants]
        if not bindings:
            return
        futures = self.admin.create_acls(bindings, request_timeout=self.timeout)
        for binding, future in futures.items():
            self._result(future, f"creating the ACL {to_grant(binding)}")

    def delete(self, grants: Iterable[Grant]) -> None:
        # a filter with every field given matches exactly one binding
        filters = [_as_filter(to_binding(g)) for g in grants]
        if not filters:
            return
        futures = self.admin.delete_acls(filters, request_timeout=self.timeout)
        for binding_filter, future in futures.items():
            self._result(future, f"deleting the ACL {to_grant(binding_filter)}")

    def users(self) -> set[str]:
        future = self.admin.describe_user_scram_credentials(request_timeout=self.timeout)
        return set(self._result(future, "describing the SCRAM users"))

    def create_users(self, passwords: Mapping[str, str], mechanism: str) -> None:
        info = ScramCredentialInfo(SCRAM_MECHANISMS[mechanism], SCRAM_ITERATIONS)
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(u, info, p.encode()) for u, p in passwords.items()
        ]
        if not upserts:
            return
        futures = self.admin.alter_user_scram_credentials(upserts, request_timeout=self.timeout)
        for user, future in futures.items():
            self._result(future, f"creating the SCRAM user {user!r}")

    def delete_users(self, users: Iterable[str], mechanism: str) -> None:
        deletions: list[UserScramCredentialAlteration] = [
            UserScramCredentialDeletion(u, SCRAM_MECHANISMS[mechanism]) for u in users
        ]
        if not deletions:
            return
        futures = self.admin.alter_user_scram_credentials(deletions, request_timeout=self.timeout)
        for user, future in futures.items():
            try:
                self._result(future, f"deleting the SCRAM user {user!r}")
            except AclsError as exc:  # never had one of this mechanism: nothing to delete
                if "RESOURCE_NOT_FOUND" not in str(exc):
                    raise

    def _result(self, future: Any, what: str) -> Any:
        try:
            return future.result(timeout=self.timeout + 5)
        except KafkaException as exc:
            raise self._error(what, exc) from exc
        except TimeoutError as exc:
            raise AclsError(
                f"{what}: no answer from Kafka at {self.where} within {self.timeout:.0f} s"
            ) from exc

    def _error(self, what: str, exc: KafkaException) -> AclsError:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        code = error.code() if error is not None else None
        message = error.str() if error is not None else str(exc)
        if code == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
            hint = "run `acls apply` as a super user"
        elif code == KafkaError.SECURITY_DISABLED:
            hint = "the brokers run without an authorizer (authorizer.class.name), so they keep no ACLs"
        elif code in _UNREACHABLE:
            hint = (
                f"is Kafka reachable at {self.where} with these MICROHUB_KAFKA_SECURITY_* settings?"
            )
        else:
            hint = ""
        return AclsError(f"{what} failed: {message}" + (f" ({hint})" if hint else ""))


def _as_filter(binding: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )


def admin_config(settings: Settings, bootstrap: list[str]) -> dict[str, Any]:
    return {"bootstrap.servers": ",".join(bootstrap)} | librdkafka_security_config(settings)


def apply_acls(
    settings: Settings,
    bootstrap: list[str],
    *,
    principals: list[Principal],
    passwords: Mapping[str, str] | None = None,
    dry_run: bool = False,
    delete_extra: bool = False,
    mechanism: str = "SCRAM-SHA-512",
    timeout: float = 30.0,
    scope: Callable[[Grant], bool] | None = None,
    delete_users: bool = False,
) -> AclPlan:
    """Bring the cluster's ACLs and SCRAM users up to the file, with the settings' topic
    prefix: create the users given passwords that do not exist yet (an existing user's
    password is left alone), create missing ACLs, report the extra ones and delete them
    only with ``delete_extra``. Running it twice changes nothing the second time."""
    if mechanism not in SCRAM_MECHANISMS:
        raise AclsError(
            f"unknown SCRAM mechanism {mechanism!r}: choose {', '.join(SCRAM_MECHANISMS)}"
        )
    prefix = settings.kafka_topic_prefix
    admin = KafkaAclAdmin(admin_config(settings, bootstrap), timeout=timeout)
    admin.check_allowed(change=not dry_run)
    result = plan(
        principals,
        admin.grants(),
        prefix=prefix,
        existing_users=admin.users(),
        passwords=passwords,
        scope=scope,
    )
    if dry_run:
        return result
    to_create = {
        u.user: (passwords or {})[u.principal] for u in result.users if u.state == "create"
    }
    admin.create_users(to_create, mechanism)
    for user in result.users:
        if user.state == "create":
            user.done = True
            log.info("created the SCRAM user %s (principal %s)", user.user, user.principal)
    admin.create(result.missing)
    result.created = list(result.missing)
    for grant in result.created:
        log.info("created the ACL %s", grant)
    if delete_extra:
        admin.delete(result.extra)
        result.deleted = list(result.extra)
        for grant in result.deleted:
            log.warning("deleted the ACL %s (not in the file)", grant)
        if delete_users:  # the extra ACLs' users that no principal names any more
            wanted = {f"User:{u.user}" for u in result.users}
            gone = sorted({g.principal for g in result.extra} - wanted)
            admin.delete_users([g.removeprefix("User:") for g in gone], mechanism)
            result.deleted_users = [g.removeprefix("User:") for g in gone]
    elif result.extra:
        log.warning("%d ACL(s) on the cluster are not in the file", len(result.extra))
    _wait_until_seen(admin, result, set(to_create), timeout)
    return result


def _wait_until_seen(
    admin: KafkaAclAdmin, result: AclPlan, users: set[str], timeout: float
) -> None:
    """Until a broker answers with the created ACLs and users and without the deleted
    ACLs: from then on, its authorizer decides by them."""
    created, deleted = set(result.created), set(result.deleted)
    deadline = time.monotonic() + timeout
    while True:
        seen = set(admin.grants()) if created or deleted else set()
        known = admin.users() if users else set()
        if created <= seen and not (deleted & seen) and users <= known:
            return
        if time.monotonic() > deadline:
            raise AclsError(
                f"the brokers at {admin.where} do not show the changes {timeout:.0f} s after "
                "the controller accepted them"
            )
        time.sleep(0.1)
