"""The real-broker side of `topics apply` (DescribeConfigs, CreateTopics responses),
which the embedded mock cannot exercise: aiokafka's own response classes, encoded and
decoded as on the wire, behind a stand-in for the admin client."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiokafka.errors import TopicAuthorizationFailedError
from aiokafka.protocol.admin import CreateTopicsResponse_v3, DescribeConfigsResponse_v1

from services.runtime.settings import Settings
from services.runtime.topic_admin import KafkaTopicAdmin
from services.runtime.topics import TopicsError, TopicSpec, plan


def wire(response: Any) -> Any:
    return type(response).decode(io.BytesIO(response.encode()))


class FakeAdmin:
    def __init__(self, *, create_errors: list[tuple[str, int, str]] | None = None) -> None:
        self.create_errors = create_errors or []
        self.created: list[Any] = []
        self.grown: dict[str, Any] = {}

    async def list_topics(self) -> list[str]:
        return ["p.events", "unrelated"]

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        assert names == ["p.events"]  # a missing topic is never described (auto-creation)
        replicas = {"replicas": [1, 2, 3]}
        return [{"error_code": 0, "topic": "p.events", "partitions": [replicas] * 3}]

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        entries = [
            ("retention.ms", "604800000", False, 5, False, []),
            ("min.insync.replicas", "2", False, 5, False, []),
        ]
        return [
            wire(
                DescribeConfigsResponse_v1(
                    throttle_time_ms=0, resources=[(0, None, 2, "p.events", entries)]
                )
            )
        ]

    async def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{}, {}, {}]}

    async def create_topics(self, topics: list[Any]) -> Any:
        self.created += topics
        return wire(CreateTopicsResponse_v3(throttle_time_ms=0, topic_errors=self.create_errors))

    async def create_partitions(self, partitions: dict[str, Any]) -> None:
        self.grown |= partitions


async def test_observes_partitions_replication_and_configs_of_existing_topics_only() -> None:
    admin = KafkaTopicAdmin(FakeAdmin())
    observed = await admin.observe(["p.events", "p.missing"])
    assert set(observed) == {"p.events"}
    events = observed["p.events"]
    assert (events.partitions, events.replication_factor) == (3, 3)
    assert events.configs == {"retention.ms": "604800000", "min.insync.replicas": "2"}

    desired = [
        TopicSpec("p.events", 6, 3, {"retention.ms": "-1", "min.insync.replicas": "2"}),
        TopicSpec("p.missing", 1, 3),
    ]
    result = plan(desired, observed, brokers=await admin.brokers())
    assert [(c.kind, c.topic) for c in result.changes] == [
        ("grow", "p.events"),
        ("drift", "p.events"),
        ("create", "p.missing"),
    ]


async def test_creates_with_configs_and_tolerates_a_topic_created_meanwhile() -> None:
    fake = FakeAdmin(create_errors=[("p.x", 36, "already exists")])
    await KafkaTopicAdmin(fake).create(TopicSpec("p.x", 2, 3, {"retention.ms": "1"}))
    [topic] = fake.created
    assert (topic.name, topic.num_partitions, topic.replication_factor) == ("p.x", 2, 3)
    assert topic.topic_configs == {"retention.ms": "1"}
    await KafkaTopicAdmin(fake).grow("p.x", 4)
    assert fake.grown["p.x"].total_count == 4


async def test_a_refused_creation_is_a_clear_error() -> None:
    fake = FakeAdmin(create_errors=[("p.x", 38, "Replication factor: 3 larger than brokers")])
    with pytest.raises(TopicsError, match=r"creating p.x failed: error 38 Replication factor"):
        await KafkaTopicAdmin(fake).create(TopicSpec("p.x", 2, 3))


async def test_configs_it_may_not_describe_are_unknown_not_an_error() -> None:
    class Unauthorised(FakeAdmin):
        async def describe_configs(self, resources: list[Any]) -> list[Any]:
            denied = (29, "Topic authorization failed.", 2, "p.events", [])
            response = DescribeConfigsResponse_v1(throttle_time_ms=0, resources=[denied])
            return [wire(response)]

    observed = await KafkaTopicAdmin(Unauthorised()).observe(["p.events"])
    assert observed["p.events"].configs is None
    [change] = plan(
        [TopicSpec("p.events", 3, 3, {"retention.ms": "1"})], observed, brokers=3
    ).changes
    assert change.kind == "configs-unknown"


async def test_a_grow_it_may_not_do_is_an_error_apply_can_report() -> None:
    class ReadOnly(FakeAdmin):
        async def create_partitions(self, partitions: dict[str, Any]) -> None:
            raise TopicAuthorizationFailedError("not allowed")

    with pytest.raises(TopicsError, match=r"cannot grow p\.x"):
        await KafkaTopicAdmin(ReadOnly()).grow("p.x", 4)


def test_settings_default_to_the_repository_topics_file() -> None:
    from services.runtime.topics import REPO_TOPICS_FILE, topics_file

    assert topics_file(Settings()) == REPO_TOPICS_FILE
    assert topics_file(Settings(topics_file="/etc/t.yaml")).as_posix() == "/etc/t.yaml"
