"""`microhub acls apply` and `topics apply` on Apache Kafka with SASL/SCRAM and the
StandardAuthorizer: users and ACLs created once, extras reported and deleted only when
asked, topics created only by the migration principal, and an ACL taken away refusing
exactly what it allowed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from services.app.platform import Platform
from services.runtime.acl_admin import KafkaAclAdmin, admin_config
from services.runtime.acls import REPO_ACLS_FILE, Grant, grants
from services.runtime.kafka_security import aiokafka_security_kwargs
from services.runtime.topic_admin import apply_topics, platform_topics
from services.runtime.topics import REPO_TOPICS_FILE, TopicsError
from tests.support.dispatch import Publisher
from tests.support.hubs import write_catalogue
from tests.support.secured_kafka import INTRUDER, SecuredKafka


async def authenticates(
    kafka: SecuredKafka, principal: str, prefix: str, password: str | None = None
) -> bool:
    """Does the broker accept this principal's password? (aiokafka says so at once;
    librdkafka would wait out its timeout.)"""
    settings = kafka.settings(principal, prefix)
    if password is not None:
        settings = settings.model_copy(update={"kafka_sasl_password": password})
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap, **aiokafka_security_kwargs(settings)
    )
    try:
        await admin.start()
    except KafkaConnectionError:
        return False
    finally:
        await admin.close()
    return True


def wait_for_grants(admin: KafkaAclAdmin, wanted: list[Grant]) -> None:
    deadline = time.monotonic() + 20
    while not set(wanted) <= set(admin.grants()):
        assert time.monotonic() < deadline, f"the broker never showed {wanted}"
        time.sleep(0.05)


async def test_apply_creates_the_users_and_acls_once_and_dry_run_changes_nothing(
    secured_kafka: SecuredKafka,
) -> None:
    prefix = secured_kafka.new_prefix()
    wanted = grants(secured_kafka.principals, prefix)
    assert len(wanted) == 51  # the gateway's 11, KEDA's on the gateway's lag; the API's closures

    dry = secured_kafka.apply(prefix, dry_run=True)
    assert dry.missing == wanted and dry.present == [] and dry.created == []
    assert {u.state for u in dry.users} == {"create"} and not any(u.done for u in dry.users)
    assert not await authenticates(secured_kafka, "booking", prefix)  # no user was created

    first = secured_kafka.apply(prefix)
    assert first.created == wanted and first.extra == []
    assert [u.user for u in first.users if u.done] == [
        f"{prefix}microhub-{key}"
        for key in (
            "booking",
            "dispatch",
            "reporting",
            "gateway",
            "api",
            "fleet",
            "migration",
            "keda",
        )
    ]
    for principal in secured_kafka.principals:
        assert await authenticates(secured_kafka, principal.key, prefix), principal.key
    assert not await authenticates(secured_kafka, "booking", prefix, password="not-the-password")

    second = secured_kafka.apply(prefix)
    assert second.missing == [] and second.created == [] and second.present == wanted
    assert {u.state for u in second.users} == {"present"}


def test_acls_beyond_the_file_are_reported_and_deleted_only_when_asked(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    prefix = secured_kafka.new_prefix()
    # an earlier version of the file had an exporter, and booking could write dispatch
    # events (a carrier is no principal of this file: the carrier registry's)
    earlier = yaml.safe_load(REPO_ACLS_FILE.read_text())
    earlier["principals"]["exporter"] = {
        "topics": {
            "microhub.exports.orders": ["Write"],
            "microhub.booking.events.v1": ["Read"],
        },
        "groups": {"microhub-exporter*": ["Read"]},
    }
    earlier["principals"]["booking"]["topics"]["microhub.dispatch.events.v1"] = ["Write"]
    (tmp_path / "earlier.yaml").write_text(yaml.safe_dump(earlier))
    created = secured_kafka.apply(prefix, file=tmp_path / "earlier.yaml").created
    exporter = f"User:{prefix}microhub-exporter"
    assert {g for g in created if g.principal == exporter} == {
        Grant(exporter, "topic", f"{prefix}microhub.exports.orders", "literal", "Write"),
        Grant(exporter, "topic", f"{prefix}microhub.booking.events.v1", "literal", "Read"),
        Grant(exporter, "group", f"{prefix}microhub-exporter", "prefixed", "Read"),
    }
    # someone else's ACL on the same cluster is none of the file's business
    admin = KafkaAclAdmin(
        admin_config(secured_kafka.settings("admin", prefix), secured_kafka.bootstrap)
    )
    elsewhere = Grant(f"User:{INTRUDER}", "topic", "another-team.orders", "literal", "Read")
    admin.create([elsewhere])
    wait_for_grants(admin, [elsewhere])

    stale = sorted(
        {g for g in created if g.principal == exporter}
        | {
            Grant(
                f"User:{prefix}microhub-booking",
                "topic",
                f"{prefix}microhub.dispatch.events.v1",
                "literal",
                "Write",
            )
        }
    )
    reported = secured_kafka.apply(prefix)
    assert reported.extra == stale and reported.deleted == [] and reported.missing == []
    assert set(stale) <= set(admin.grants())  # reported, not deleted

    dry = secured_kafka.apply(prefix, delete_extra=True, dry_run=True)
    assert dry.extra == stale and dry.deleted == [] and set(stale) <= set(admin.grants())

    deleted = secured_kafka.apply(prefix, delete_extra=True)
    assert deleted.deleted == stale
    left = set(admin.grants())
    assert not (set(stale) & left) and elsewhere in left
    assert secured_kafka.apply(prefix).extra == []


async def test_only_the_migration_principal_creates_topics_and_a_missing_one_stops_a_service(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    prefix = secured_kafka.new_prefix()
    secured_kafka.apply(prefix)
    booking = secured_kafka.settings(
        "booking",
        prefix,
        data_dir=tmp_path,
        hubs_file=write_catalogue(tmp_path / "hubs.yaml"),
    )
    # what `microhub serve booking` does first: apply the topics file (here: none exist)
    with pytest.raises(TopicsError) as refused:
        await Platform(booking, services=["booking"], http=False).start()
    assert str(refused.value) == (
        f"topic {prefix}microhub.booking.commands.v1 is missing (or this principal may not "
        "describe it) and this principal may not create it: create the topics first with "
        "`microhub topics apply` as the migration principal (a carrier's: "
        "`microhub carriers apply`)"
    )

    migration = secured_kafka.settings("migration", prefix)
    created = await apply_topics(migration, secured_kafka.bootstrap)
    # the topics file's, and those of the carriers of the carriers file (the sample's)
    everything = sorted(prefix + s.name for s in platform_topics(migration))
    assert sorted(created.created) == everything
    again = await apply_topics(migration, secured_kafka.bootstrap)
    # the migration principal sees the configs (DescribeConfigs): no drift, nothing unknown
    assert again.created == [] and again.drift == [] and again.of("configs-unknown") == []

    # a service's principal only observes: it may not describe configs, and says so
    observed = await apply_topics(booking, secured_kafka.bootstrap)
    assert observed.created == [] and observed.failed == [] and observed.drift == []
    assert sorted(c.topic for c in observed.of("configs-unknown")) == everything

    # and the migration principal may grow a topic (Alter), which no service may
    grown_file = tmp_path / "topics.yaml"
    topics = yaml.safe_load(REPO_TOPICS_FILE.read_text())
    topics["topics"][-1]["partitions"] = 2
    grown_file.write_text(yaml.safe_dump(topics))
    refused_grow = await apply_topics(
        booking.model_copy(update={"topics_file": grown_file}), secured_kafka.bootstrap
    )
    assert [c.topic for c in refused_grow.failed] == [f"{prefix}microhub.dispatch.events.v1.dlq"]
    assert "not done" in refused_grow.failed[0].detail
    grown = await apply_topics(
        migration.model_copy(update={"topics_file": grown_file}), secured_kafka.bootstrap
    )
    assert grown.grown == [f"{prefix}microhub.dispatch.events.v1.dlq"]


async def test_taking_an_acl_away_refuses_what_it_allowed(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    """The refusals the other tests assert come from the ACLs: without booking's Write on
    its events topic, its producer is refused there; without the vehicles' only Write, their
    idempotent producer is refused a producer id (no IdempotentWrite on the cluster, no
    Write on any topic: KIP-679). With the file applied again, both work."""
    prefix = secured_kafka.new_prefix()
    secured_kafka.apply(prefix)
    await apply_topics(secured_kafka.settings("migration", prefix), secured_kafka.bootstrap)
    topic_of = secured_kafka.settings("booking", prefix).topic

    async def booking_publishes() -> None:
        security = secured_kafka.security("booking", prefix)
        async with Publisher(secured_kafka.bootstrap, topic_of, security=security) as booking:
            await booking.send_raw(b"{}", topic="microhub.booking.events.v1", key="test-hub")

    async def vehicles_send_telemetry() -> None:
        security = secured_kafka.security("fleet", prefix)
        async with Publisher(secured_kafka.bootstrap, topic_of, security=security) as fleet:
            await fleet.send_raw(b"{}", topic="microhub.fleet.telemetry.v1", key="bike-1")

    await booking_publishes()
    await vehicles_send_telemetry()
    reduced = yaml.safe_load(REPO_ACLS_FILE.read_text())
    del reduced["principals"]["booking"]["topics"]["microhub.booking.events.v1"]
    # the vehicles keep only seeing their topic: no Write left anywhere
    reduced["principals"]["fleet"]["topics"]["microhub.fleet.telemetry.v1"] = ["Describe"]
    (tmp_path / "reduced.yaml").write_text(yaml.safe_dump(reduced))
    removed = secured_kafka.apply(prefix, file=tmp_path / "reduced.yaml", delete_extra=True)
    taken = [
        Grant(f"User:{prefix}microhub-{who}", "topic", f"{prefix}{topic}", "literal", "Write")
        for who, topic in (
            ("booking", "microhub.booking.events.v1"),
            ("fleet", "microhub.fleet.telemetry.v1"),
        )
    ]
    assert removed.deleted == taken
    with pytest.raises(TopicAuthorizationFailedError):
        await booking_publishes()
    with pytest.raises(ClusterAuthorizationFailedError):
        await vehicles_send_telemetry()

    assert secured_kafka.apply(prefix).created == taken
    await booking_publishes()
    await vehicles_send_telemetry()
