"""`microhub carriers apply` on Apache Kafka with SASL/SCRAM and the StandardAuthorizer:
each carrier's principal writes its own commands topic and reads its own events topic,
and the broker refuses it everything else: another carrier's commands (forging them) or
events (reading them), another carrier's consumer groups, and every internal topic.

The command is run as an operator would (the super user's settings in MICROHUB_…
variables, a registry file and the carriers' passwords), after `acls apply` and the
migration principal's `topics apply`, as a deployment does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from typer.testing import CliRunner

from services.gateway.cli import carriers_app
from services.runtime.acls import user_name
from services.runtime.apache_kafka import ADMIN_USER
from services.runtime.carriers import principal
from services.runtime.topic_admin import apply_topics
from tests.support.carrier import own_topic
from tests.support.gateway import write_carriers
from tests.support.secured_kafka import SecuredKafka

INTERNAL = (
    "microhub.booking.commands.v1",
    "microhub.booking.events.v1",
    "microhub.dispatch.events.v1",
)
PASSWORDS = {"acme": "acme-pw,]x", "bravo": "bravo-pw]y,"}


def carrier_security(kafka: SecuredKafka, carrier: str, prefix: str) -> dict[str, Any]:
    """aiokafka's keywords for a client that is ``carrier``'s principal."""
    from services.runtime.kafka_security import aiokafka_security_kwargs

    settings = kafka.settings(
        ADMIN_USER,
        prefix,
        kafka_sasl_username=user_name(principal(carrier), prefix),
        kafka_sasl_password=PASSWORDS[carrier],
    )
    return aiokafka_security_kwargs(settings)


async def produce(kafka: SecuredKafka, security: dict[str, Any], topic: str) -> None:
    # idempotent, as a carrier's client would be (KIP-679: Write on a topic is enough)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, enable_idempotence=True, acks="all", **security
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"test-hub")
    finally:
        await producer.stop()


async def read(
    kafka: SecuredKafka, security: dict[str, Any], topic: str, group: str
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **security,
    )
    try:
        await consumer.start()
        batches = await consumer.getmany(timeout_ms=5000)
        return [r.value for records in batches.values() for r in records]
    finally:
        await consumer.stop()


@pytest.fixture
def prefix(secured_kafka: SecuredKafka, tmp_path: Path) -> str:
    """A fresh environment on the shared cluster: the platform's users and ACLs, then
    `carriers apply` for acme and bravo (users, topics, ACLs)."""
    prefix = secured_kafka.new_prefix()
    secured_kafka.apply(prefix)
    carriers = write_carriers(tmp_path / "carriers.yaml", "acme", "bravo")
    passwords = tmp_path / "passwords.yaml"
    passwords.write_text(yaml.safe_dump(PASSWORDS))
    user, password = secured_kafka.credentials(ADMIN_USER, prefix)
    env = {
        "MICROHUB_KAFKA_BOOTSTRAP_SERVERS": ",".join(secured_kafka.bootstrap),
        "MICROHUB_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "MICROHUB_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "MICROHUB_KAFKA_SASL_USERNAME": user,
        "MICROHUB_KAFKA_SASL_PASSWORD": password,
        "MICROHUB_KAFKA_TOPIC_PREFIX": prefix,
        "MICROHUB_CARRIERS_FILE": str(carriers),
        "MICROHUB_DATA_DIR": str(tmp_path),
    }
    args = ["apply", "--file", str(carriers), "--file-only", "--passwords", str(passwords)]
    result = CliRunner().invoke(carriers_app, args, env=env)
    assert result.exit_code == 0, result.output
    assert re.search(
        r"2 active carriers: \d+ topics created, 2 users created, 8 ACLs", result.output
    )
    return prefix


async def test_a_carrier_reaches_only_its_own_topics(
    secured_kafka: SecuredKafka, prefix: str
) -> None:
    # the internal topics exist (created by the migration principal), so every refusal
    # below is the authorizer's, not a missing topic's
    await apply_topics(secured_kafka.settings("migration", prefix), secured_kafka.bootstrap)
    acme = carrier_security(secured_kafka, "acme", prefix)
    bravo = carrier_security(secured_kafka, "bravo", prefix)
    group = f"{prefix}microhub.carriers.acme.test"

    # its own: acme writes its commands; the gateway tells it something on its events
    # topic, which acme reads (in a group of its own namespace)
    await produce(secured_kafka, acme, prefix + own_topic("acme"))
    gateway = secured_kafka.security("gateway", prefix)
    await produce(secured_kafka, gateway, prefix + own_topic("acme", "events"))
    assert await read(secured_kafka, acme, prefix + own_topic("acme", "events"), group) == [b"{}"]

    # bravo's: acme can neither forge its commands nor read its events
    with pytest.raises(TopicAuthorizationFailedError, match=own_topic("bravo")):
        await produce(secured_kafka, acme, prefix + own_topic("bravo"))
    await produce(secured_kafka, gateway, prefix + own_topic("bravo", "events"))
    with pytest.raises(TopicAuthorizationFailedError, match=own_topic("bravo", "events")):
        await read(secured_kafka, acme, prefix + own_topic("bravo", "events"), group)
    # nor join bravo's consumer groups (to disturb or read its offsets)
    with pytest.raises(GroupAuthorizationFailedError):
        await read(
            secured_kafka,
            acme,
            prefix + own_topic("acme", "events"),
            f"{prefix}microhub.carriers.bravo.app",
        )
    # and what acme sent is not bravo's to read either: a carrier writes, never reads, its
    # commands (the gateway does)
    with pytest.raises(TopicAuthorizationFailedError, match=own_topic("acme")):
        await read(secured_kafka, bravo, prefix + own_topic("acme"), group)
    with pytest.raises(TopicAuthorizationFailedError, match=own_topic("acme")):
        await read(secured_kafka, acme, prefix + own_topic("acme"), group)

    # no internal topic, either way
    for name in INTERNAL:
        with pytest.raises(TopicAuthorizationFailedError, match=f"{prefix}{name}"):
            await produce(secured_kafka, acme, prefix + name)
        with pytest.raises(TopicAuthorizationFailedError, match=f"{prefix}{name}"):
            await read(secured_kafka, acme, prefix + name, group)

    # bravo, for its part, has its own
    await produce(secured_kafka, bravo, prefix + own_topic("bravo"))
    assert await read(
        secured_kafka,
        bravo,
        prefix + own_topic("bravo", "events"),
        f"{prefix}microhub.carriers.bravo.app",
    ) == [b"{}"]


async def test_the_http_apis_principal_writes_carriers_commands_and_nothing_else_of_theirs(
    secured_kafka: SecuredKafka, prefix: str
) -> None:
    """The HTTP API sends a carrier's commands through the carrier's own topic (and the
    gateway): `carriers apply` lets its principal write every active carrier's commands
    topic; it reads none, and neither reads nor writes a carrier's events."""
    api = secured_kafka.security("api", prefix)
    for carrier in ("acme", "bravo"):
        await produce(secured_kafka, api, prefix + own_topic(carrier))
        with pytest.raises(TopicAuthorizationFailedError, match=own_topic(carrier, "events")):
            await produce(secured_kafka, api, prefix + own_topic(carrier, "events"))
    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await read(secured_kafka, api, prefix + own_topic("acme"), f"{prefix}microhub-api")
    # `acls apply` again: the per-carrier ACLs are the registry's, neither reported as
    # extra nor deleted by the platform file's run
    again = secured_kafka.apply(prefix, delete_extra=True)
    assert not [g for g in again.extra if "carriers." in g.name], again.extra
    await produce(secured_kafka, api, prefix + own_topic("acme"))
