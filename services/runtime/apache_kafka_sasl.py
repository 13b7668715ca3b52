"""SASL/SCRAM and ACLs for the Apache Kafka rig (``apache_kafka.ApacheKafka(users=…)``).

The client listener speaks SASL_PLAINTEXT with SCRAM-SHA-512; the StandardAuthorizer
denies whatever no ACL allows, and ``admin`` is the only super user. Two details make it
real rather than nearly real:

- Only the admin is written into the bootstrap metadata by the format tool (brokers need
  it to reach each other before any admin request can be served). That tool's
  ``--add-scram`` splits on ``,`` and ``]`` and drops quotes, silently storing another
  password, so the admin's password is checked for what it can carry and every other
  user is created through AlterUserScramCredentials, which takes any password.
- KRaft controllers cannot authenticate with SCRAM (its credentials live in the metadata
  they serve), so the controller listener uses SASL/PLAIN as the admin: with PLAINTEXT
  there, its peers would be ``User:ANONYMOUS`` and that would have to be a super user,
  which any unauthenticated connection to the port would then be too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

ADMIN_USER = "admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 4096  # Kafka's minimum: a test cluster, not a password store
ADMIN_PASSWORD_UNSAFE = ',]["\\'
LISTENER = "SASL_PLAINTEXT"


def check_admin_password(password: str) -> None:
    unsafe = set(password) & set(ADMIN_PASSWORD_UNSAFE)
    if unsafe or not password:
        raise ValueError(
            f"users['{ADMIN_USER}']: the super user's password must be non-empty "
            f"and free of {' '.join(ADMIN_PASSWORD_UNSAFE)} "
            f"(found {' '.join(sorted(unsafe)) or 'an empty password'})"
        )


def format_arguments(admin_password: str) -> list[str]:
    """What ``kafka.tools.StorageTool format`` needs to put the admin in the metadata."""
    return ["--add-scram", f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={admin_password}]"]


def client_settings(user: str, password: str) -> dict[str, Any]:
    """librdkafka settings for ``user`` on the client listener."""
    return {
        "security.protocol": LISTENER,
        "sasl.mechanism": SCRAM_MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
    }


def broker_properties(admin_password: str) -> dict[str, str]:
    """server.properties entries: SCRAM on the client listener, PLAIN on the controller
    listener, the authorizer denying by default."""
    scram_jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{admin_password}";'
    )
    plain_jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{ADMIN_USER}" password="{admin_password}" '
        f'user_{ADMIN_USER}="{admin_password}";'
    )
    return {
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        f"listener.name.{LISTENER.lower()}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": scram_jaas,
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": plain_jaas,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER}",
        "allow.everyone.if.no.acl.found": "false",
    }


def create_users(
    admin_settings: Mapping[str, Any],
    users: Mapping[str, str],
    brokers: list[str],
    *,
    timeout: float,
    failed: Callable[[str], Exception],
) -> None:
    """Create ``users`` (not the admin) through AlterUserScramCredentials, then wait until
    each one authenticates on every broker in ``brokers``: a credential reaches the brokers
    through the metadata log a moment after the controller accepted it."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    users = {name: password for name, password in users.items() if name != ADMIN_USER}
    if not users:
        return
    admin = AdminClient(dict(admin_settings) | {"log_level": 0})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(n, info, p.encode()) for n, p in users.items()]
    )
    for name, future in futures.items():
        try:
            future.result(timeout=30)
        except Exception as exc:
            raise failed(f"creating the SCRAM user {name!r} failed: {exc}") from exc
    deadline = time.monotonic() + timeout
    pending = [(name, address) for name in users for address in brokers]
    while pending:
        name, address = pending[0]
        if _authenticates(client_settings(name, users[name]), address):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise failed(
                f"the SCRAM user {name!r} cannot authenticate on {address} "
                f"{timeout:.0f} s after it was created"
            )
        time.sleep(0.1)


def _authenticates(settings: Mapping[str, Any], address: str) -> bool:
    from confluent_kafka.admin import AdminClient

    config = dict(settings) | {"bootstrap.servers": address, "log_level": 0}
    try:
        AdminClient(config).list_topics(timeout=2)
    except Exception:
        return False
    return True
