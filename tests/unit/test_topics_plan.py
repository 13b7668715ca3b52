"""The rules of `microhub topics apply`, without a broker: create, grow, report, never
delete or shrink; replication capped to the brokers there are."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.runtime.topics import (
    ObservedTopic,
    TopicsError,
    TopicSpec,
    effective,
    load_topics,
    plan,
)


def seen(spec: TopicSpec, **kw) -> ObservedTopic:
    values = {
        "name": spec.name,
        "partitions": spec.partitions,
        "replication_factor": spec.replication_factor,
        "configs": dict(spec.configs),
    } | kw
    return ObservedTopic(**values)


SPEC = TopicSpec("t", 6, 3, {"min.insync.replicas": "2", "retention.ms": "-1"})


def test_missing_topic_is_created_and_matching_one_is_left_alone() -> None:
    assert [c.kind for c in plan([SPEC], {}, brokers=3).changes] == ["create"]
    assert plan([SPEC], {"t": seen(SPEC)}, brokers=3).changes == []


def test_fewer_partitions_grow_more_are_refused() -> None:
    assert [c.kind for c in plan([SPEC], {"t": seen(SPEC, partitions=3)}, brokers=3).changes] == [
        "grow"
    ]
    [refused] = plan([SPEC], {"t": seen(SPEC, partitions=12)}, brokers=3).changes
    assert refused.kind == "shrink-refused" and "has 12 partitions" in refused.detail


def test_config_and_replication_differences_are_drift() -> None:
    observed = seen(SPEC, replication_factor=2, configs={"min.insync.replicas": "1"})
    details = [c.detail for c in plan([SPEC], {"t": observed}, brokers=3).drift]
    assert details == [
        "replication factor is 2, the file says 3",
        "min.insync.replicas is '1', the file says '2'",
        "retention.ms is None, the file says '-1'",
    ]


def test_unknown_configs_are_said_not_guessed() -> None:
    changes = plan([SPEC], {"t": seen(SPEC, configs=None)}, brokers=3).changes
    assert [c.kind for c in changes] == ["configs-unknown"]


def test_one_broker_caps_replication_and_min_insync() -> None:
    capped = effective(SPEC, brokers=1)
    assert capped.replication_factor == 1 and capped.configs["min.insync.replicas"] == "1"
    kinds = [c.kind for c in plan([SPEC], {}, brokers=1).changes]
    assert kinds == ["capped", "create"]


@given(
    partitions=st.integers(1, 64),
    observed_partitions=st.integers(1, 64),
    brokers=st.integers(1, 5),
)
def test_never_deletes_and_never_shrinks(
    partitions: int, observed_partitions: int, brokers: int
) -> None:
    spec = TopicSpec("t", partitions, 3)
    extra = ObservedTopic("not-in-file", 3, 1, {})
    observed = {"t": seen(effective(spec, brokers), partitions=observed_partitions), "x": extra}
    result = plan([spec], observed, brokers=brokers)
    assert all(c.topic == "t" for c in result.changes)
    grows = result.of("grow")
    assert len(grows) == (1 if partitions > observed_partitions else 0)
    assert all(c.spec is not None and c.spec.partitions > observed_partitions for c in grows)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("topics: nope", "expected a mapping with a 'topics' list"),
        ("topics:\n  - partitions: 3", "each topic needs a 'name'"),
        ("topics:\n  - name: a\n    partitions: 0", "topic 'a': partitions must be a positive"),
        ("topics:\n  - name: a\n    partitions: 1\n  - name: a\n    partitions: 1", "listed twice"),
        ("topics:\n  - name: a\n    partitons: 1", "unknown key(s) partitons"),
        ("topics: [", "is not valid YAML"),
    ],
)
def test_a_wrong_topics_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    with pytest.raises(TopicsError, match=None) as info:
        load_topics(path)
    assert message in str(info.value)


def test_defaults_apply_and_entries_override(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(
        "defaults:\n  replication_factor: 2\n  configs:\n    cleanup.policy: delete\n"
        "topics:\n  - name: a\n    partitions: 3\n    configs:\n      retention.ms: 5\n"
    )
    [spec] = load_topics(path)
    assert spec == TopicSpec("a", 3, 2, {"cleanup.policy": "delete", "retention.ms": "5"})
