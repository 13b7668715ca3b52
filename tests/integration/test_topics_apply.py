"""`microhub topics apply` over the Kafka fixture chain, with the per-test prefix.

On a real broker (configured or testcontainers) every step goes through the admin API.
On the embedded librdkafka mock, which implements neither CreateTopics, CreatePartitions
nor DescribeConfigs, creation goes through the mock's C API, configs are the ones we asked
for, and growing partitions is reported as not possible (the test asserts that too: a
silent "grown" there would be a lie).
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from services.runtime.settings import Settings
from services.runtime.topic_admin import apply_topics
from services.runtime.topics import TopicSpec, load_topics, topics_file
from tests.support.kafka import KafkaUnderTest


async def partition_counts(bootstrap: list[str], names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([n for n in names if n in existing])
        return {t["topic"]: len(t["partitions"]) for t in described}
    finally:
        await admin.close()


async def apply(settings: Settings, cluster: KafkaUnderTest, specs: list[TopicSpec]):
    return await apply_topics(settings, cluster.bootstrap, embedded=cluster.embedded, specs=specs)


async def test_creates_every_topic_of_the_file_then_changes_nothing(
    settings: Settings, kafka_cluster: KafkaUnderTest
) -> None:
    specs = load_topics(topics_file(settings))
    names = [settings.topic(s.name) for s in specs]

    first = await apply(settings, kafka_cluster, specs)

    assert sorted(first.created) == sorted(names)
    counts = await partition_counts(kafka_cluster.bootstrap, names)
    assert counts == {settings.topic(s.name): s.partitions for s in specs}

    second = await apply(settings, kafka_cluster, specs)
    assert second.created == [] and second.grown == [] and second.drift == []
    assert second.unchanged == len(specs)


async def test_grows_partitions_and_never_shrinks(
    settings: Settings, kafka_cluster: KafkaUnderTest
) -> None:
    name = settings.topic("grow.me")
    await apply(settings, kafka_cluster, [TopicSpec("grow.me", 2, 1)])

    grown = await apply(settings, kafka_cluster, [TopicSpec("grow.me", 4, 1)])

    if kafka_cluster.embedded is None:
        assert grown.grown == [name]
        assert (await partition_counts(kafka_cluster.bootstrap, [name]))[name] == 4
    else:
        [change] = grown.of("grow")
        assert not change.done and "cannot add partitions" in change.detail
        assert grown.failed == [change]

    # asking for fewer partitions than the topic has is drift, never a change
    expected = 4 if kafka_cluster.embedded is None else 2
    shrink = await apply(settings, kafka_cluster, [TopicSpec("grow.me", 1, 1)])
    [refused] = shrink.of("shrink-refused")
    assert refused.topic == name and f"has {expected} partitions" in refused.detail
    assert (await partition_counts(kafka_cluster.bootstrap, [name]))[name] == expected


async def test_reports_config_drift_without_changing_the_topic(
    settings: Settings, kafka_cluster: KafkaUnderTest
) -> None:
    await apply(settings, kafka_cluster, [TopicSpec("drift.me", 1, 1, {"retention.ms": "1000"})])

    report = await apply(
        settings, kafka_cluster, [TopicSpec("drift.me", 1, 1, {"retention.ms": "2000"})]
    )

    [drift] = report.drift
    assert drift.topic == settings.topic("drift.me")
    assert drift.detail == "retention.ms is '1000', the file says '2000'"
    assert report.created == [] and report.grown == []
    # reported, not fixed: the next run reports the same drift
    again = await apply(
        settings, kafka_cluster, [TopicSpec("drift.me", 1, 1, {"retention.ms": "2000"})]
    )
    assert [c.detail for c in again.drift] == [drift.detail]


async def test_another_prefix_is_another_set_of_topics(
    settings: Settings, kafka_cluster: KafkaUnderTest
) -> None:
    specs = [TopicSpec("prefixed", 1, 1)]
    await apply(settings, kafka_cluster, specs)
    other = settings.model_copy(update={"kafka_topic_prefix": kafka_cluster.new_prefix()})

    report = await apply(other, kafka_cluster, specs)

    assert report.created == [other.topic("prefixed")]
