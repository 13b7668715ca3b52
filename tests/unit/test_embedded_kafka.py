"""The embedded cluster's own behaviour: clear errors, topics, bootstrap list."""

from __future__ import annotations

import pytest

from services.runtime import embedded_kafka
from services.runtime.embedded_kafka import EmbeddedKafka, EmbeddedKafkaUnavailable


def test_a_missing_library_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROHUB_LIBRDKAFKA", "/nonexistent/librdkafka.so.1")
    with pytest.raises(EmbeddedKafkaUnavailable, match="MICROHUB_LIBRDKAFKA points at"):
        embedded_kafka.find_librdkafka()


def test_the_bundled_library_is_found() -> None:
    assert "librdkafka" in embedded_kafka.find_librdkafka().name


def test_cluster_lifecycle_and_argument_errors() -> None:
    with EmbeddedKafka(brokers=2) as cluster:
        servers = cluster.bootstrap_servers
        assert len(servers) == 2 and all(s.startswith("127.0.0.1:") for s in servers)
        cluster.create_topic("t", partitions=3)
        with pytest.raises(ValueError, match="at least one partition"):
            cluster.create_topic("u", partitions=0)
        cluster.set_broker_down(1)
        cluster.set_broker_up(1)
    assert not cluster.running
    with pytest.raises(RuntimeError, match="not running"):
        cluster.create_topic("t")
    with pytest.raises(ValueError, match="at least one broker"):
        EmbeddedKafka(brokers=0).start()
