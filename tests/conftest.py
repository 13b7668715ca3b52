"""Shared fixtures: Kafka and PostgreSQL as fixture chains (see tests/support/)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.runtime.apache_kafka import ApacheKafka
from services.runtime.settings import Settings
from tests.support import kafka as kafka_support
from tests.support import postgres as postgres_support
from tests.support.kafka import KafkaUnderTest, kafka_chain
from tests.support.postgres import PostgresUnderTest, postgres_chain

_LINGERING: list[str] = []
# what the session's fixtures started, and how long it took (printed after the run)
_STARTED: list[str] = []


# A test that uses one of these (directly or through another fixture) needs that server:
# marked automatically, so `pytest -m "not kafka and not postgres"` is the fast loop.
KAFKA_FIXTURES = {"kafka_cluster", "real_kafka", "apache_three_nodes", "secured_kafka", "demo_run"}
POSTGRES_FIXTURES = {"postgres_server", "postgres_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & KAFKA_FIXTURES or item.get_closest_marker("kafka"):
            item.add_marker(pytest.mark.kafka)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if names & POSTGRES_FIXTURES or params.get("database_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """A `microhub` command run in-process (typer's CliRunner) replaces the root logger's
    handlers with one on the stderr of that moment, a stream closed when the test ends;
    a later log line from any thread would then print "--- Logging error ---". Each test
    gets the root logger back as it found it."""
    root = logging.getLogger()

    def ours(handler: logging.Handler) -> bool:
        # pytest adds and removes its own capture handlers around each phase
        return not type(handler).__module__.startswith("_pytest")

    handlers, level = [h for h in root.handlers if ours(h)], root.level
    yield
    for handler in [h for h in root.handlers if ours(h) and h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The broker and database this run uses: the same links the fixtures take."""
    return [
        f"kafka: {kafka_support.describe_choice(kafka_support.chosen_kind())}",
        f"postgresql: {postgres_support.describe_choice(postgres_support.chosen_kind())}",
    ]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _STARTED:
        terminalreporter.write_line(line)


def _say(line: str) -> None:
    # the fixtures' output is captured; Maven's first resolution deserves to be seen
    print(f"\n{line}", file=sys.__stderr__, flush=True)


def _lingering_threads(wait_seconds: float) -> list[threading.Thread]:
    deadline = time.monotonic() + wait_seconds
    while True:
        alive = [
            t
            for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()
        ]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A non-daemon thread left running keeps the interpreter from exiting after the
    summary: CI then waits for its timeout instead of reporting. Fail with the threads'
    names instead (pytest_unconfigure ends the process)."""
    alive = _lingering_threads(wait_seconds=10)
    if alive:
        _LINGERING.extend(f"{t.name} ({t._target!r})" for t in alive)  # type: ignore[attr-defined]
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_unconfigure(config: pytest.Config) -> None:
    if _LINGERING:
        print(
            "\nERROR: the tests left non-daemon threads running, which would keep this "
            "process from exiting: " + ", ".join(_LINGERING),
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(int(pytest.ExitCode.INTERNAL_ERROR))


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaUnderTest]:
    began = time.monotonic()
    for cluster in kafka_chain(say=_say):
        _STARTED.append(
            f"kafka: {cluster.description} at {cluster.bootstrap_string}, "
            f"ready in {time.monotonic() - began:.1f} s"
        )
        yield cluster


@pytest.fixture(scope="session")
def real_kafka(kafka_cluster: KafkaUnderTest) -> Iterator[KafkaUnderTest]:
    """A real Apache Kafka (consumer groups with several members, the admin API): the
    session's broker when it is one, else a one-node cluster from Maven Central."""
    if kafka_cluster.is_real:
        yield kafka_cluster
        return
    kafka_support.real_kafka_or_skip()
    from services.runtime.apache_kafka import ApacheKafka

    with ApacheKafka(nodes=1, say=_say) as apache:
        yield KafkaUnderTest("apache", apache.bootstrap_servers, apache=apache)


@pytest.fixture(scope="session")
def apache_three_nodes() -> Iterator[ApacheKafka]:
    """Three KRaft nodes, replication 3 and min.insync.replicas 2: a broker can die."""
    kafka_support.real_kafka_or_skip()
    began = time.monotonic()
    with ApacheKafka(nodes=3, say=_say) as apache:
        _STARTED.append(f"kafka: {apache.describe()}, ready in {time.monotonic() - began:.1f} s")
        yield apache


@pytest.fixture
def real_settings(settings: Settings, real_kafka: KafkaUnderTest) -> Settings:
    """``settings`` on the real broker."""
    return settings.model_copy(update={"kafka_bootstrap_servers": real_kafka.bootstrap_string})


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresUnderTest]:
    began = time.monotonic()
    for server in postgres_chain():
        _STARTED.append(f"postgresql: {server.kind}, ready in {time.monotonic() - began:.1f} s")
        yield server


@pytest.fixture
async def postgres_url(postgres_server: PostgresUnderTest) -> AsyncIterator[str]:
    name = await postgres_server.create_database()
    try:
        yield postgres_server.url_for(name)
    finally:
        await postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Persistence tests run on both databases we support."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
        return
    server: PostgresUnderTest = request.getfixturevalue("postgres_server")
    name = await server.create_database()
    try:
        yield server.url_for(name)
    finally:
        await server.drop_database(name)


@pytest.fixture
def settings(tmp_path: Path, kafka_cluster: KafkaUnderTest) -> Settings:
    """Settings for one test: its own topic prefix on the session's Kafka, its own data dir."""
    return Settings(
        kafka_bootstrap_servers=kafka_cluster.bootstrap_string,
        kafka_topic_prefix=kafka_cluster.new_prefix(),
        data_dir=tmp_path / "data",
        sweep_interval_seconds=3600,
        outbox_poll_interval_seconds=0.05,
        # tests live in simulated time (next week's slots); the skew test turns it on
        max_clock_skew_seconds=0,
    )


@pytest.fixture
async def topics(settings: Settings, kafka_cluster: KafkaUnderTest) -> list[str]:
    return await kafka_support.create_topics(settings, kafka_cluster)
