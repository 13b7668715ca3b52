"""Apache Kafka brokers from their Maven Central jars, as child processes: the real engine
for tests and for developers who have Java but no Docker.

On the jars that ``apache_kafka_classpath`` resolves, each node is formatted
(``kafka.tools.StorageTool``) and started (``kafka.Kafka``) in KRaft combined mode on free
loopback ports: one node, or three with replication 3 and ``min.insync.replicas=2``. A
node can be SIGKILLed and started again on its own log directory: a broker failure.

Brokers die with the process that started them (``PR_SET_PDEATHSIG``): a test run that is
killed leaves no Java behind. The signal follows the *thread* that spawned the broker,
so start nodes from a thread that outlives them (the main thread, as the CLI and the
test fixtures do).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.runtime import apache_kafka_sasl as sasl
from services.runtime.apache_kafka_classpath import DATA, kafka_version, resolve_classpath
from services.runtime.apache_kafka_classpath import (
    ApacheKafkaUnavailable as ApacheKafkaUnavailable,
)
from services.runtime.apache_kafka_classpath import cache_root as cache_root
from services.runtime.apache_kafka_classpath import missing_tools as missing_tools
from services.runtime.apache_kafka_sasl import ADMIN_USER

READY_LINE = "Kafka Server started"
DEFAULT_JVM_OPTS = (
    "-Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "
    "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true"
)


class ApacheKafkaError(RuntimeError):
    """A broker did not format, start or become ready."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class BrokerNode:
    """One KRaft node (broker and controller in one process)."""

    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    _log_mark: int = 0  # where the current run's log starts

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log(self) -> Path:
        return self.directory / "broker.log"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def started(self) -> bool:
        """Has the current run logged that it is up?"""
        if not self.log.exists():
            return False
        with self.log.open("rb") as f:
            f.seek(self._log_mark)
            return READY_LINE.encode() in f.read()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: a broker failure, nothing flushed or handed over."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def terminate(self, timeout: float = 20.0) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class ApacheKafka:
    """A KRaft cluster of ``nodes`` Apache Kafka processes on loopback.

    ``users`` (name -> password) turns on SASL/SCRAM (SCRAM-SHA-512) on the client
    listener with the standard authorizer: ``admin`` is the super user (its password is
    ``users['admin']``, added when missing), every other principal needs ACLs. The
    controller listener authenticates too (SASL/PLAIN, as ``admin``), so no
    unauthenticated connection is a super user.
    """

    nodes: int = 1
    directory: Path | None = None
    users: Mapping[str, str] | None = None
    jvm_opts: str = field(
        default_factory=lambda: os.environ.get("MICROHUB_APACHE_KAFKA_JVM_OPTS", DEFAULT_JVM_OPTS)
    )
    ready_timeout: float = 120.0
    extra_config: Mapping[str, str] = field(default_factory=dict)
    say: Callable[[str], None] = lambda _: None
    brokers: list[BrokerNode] = field(default_factory=list, init=False)
    cluster_id: str = field(default_factory=new_cluster_id, init=False)
    start_seconds: float | None = field(default=None, init=False)
    _owns_directory: bool = field(default=False, init=False)
    _lib: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= 9:
            raise ValueError("nodes must be 1 to 9")
        if self.users is not None:
            if ADMIN_USER not in self.users:
                self.users = {ADMIN_USER: "admin-secret", **self.users}
            sasl.check_admin_password(self.users[ADMIN_USER])

    # --- what clients need ------------------------------------------------------------

    @property
    def version(self) -> str:
        return kafka_version()

    @property
    def bootstrap_servers(self) -> list[str]:
        return [b.address for b in self.brokers]

    @property
    def sasl(self) -> bool:
        return self.users is not None

    def describe(self) -> str:
        auth = ", SASL/SCRAM + ACLs" if self.sasl else ""
        return f"apache-kafka {self.version}, {self.nodes} node{'s' * (self.nodes > 1)}{auth}"

    def client_config(self, user: str = ADMIN_USER) -> dict[str, Any]:
        """librdkafka (confluent-kafka) settings for a client of this cluster."""
        config: dict[str, Any] = {"bootstrap.servers": ",".join(self.bootstrap_servers)}
        if self.users is not None:
            config |= sasl.client_settings(user, self.users[user])
        return config

    def broker(self, node_id: int) -> BrokerNode:
        for broker in self.brokers:
            if broker.node_id == node_id:
                return broker
        raise KeyError(f"no node {node_id}: nodes are {[b.node_id for b in self.brokers]}")

    # --- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ApacheKafka:
        began = time.monotonic()
        self._lib = resolve_classpath(say=self.say)
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="microhub-kafka-"))
            self._owns_directory = True
        self.directory.mkdir(parents=True, exist_ok=True)
        self.brokers = [
            BrokerNode(i, free_port(), free_port(), self.directory / f"node-{i}")
            for i in range(1, self.nodes + 1)
        ]
        try:
            for broker in self.brokers:
                broker.directory.mkdir(parents=True, exist_ok=True)
                broker.config.write_text(self._properties(broker))
            self._format_all()
            for broker in self.brokers:
                self.start_node(broker.node_id)
            self.wait_until_ready()
            if self.users is not None:
                sasl.create_users(
                    self.client_config(),
                    self.users,
                    [b.address for b in self.brokers if b.alive],
                    timeout=self.ready_timeout,
                    failed=ApacheKafkaError,
                )
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        self.say(f"{self.describe()} ready in {self.start_seconds:.1f} s")
        return self

    def start_node(self, node_id: int) -> BrokerNode:
        """Start (or restart, on its existing log directory) one node; does not wait."""
        broker = self.broker(node_id)
        if broker.alive:
            return broker
        assert self._lib is not None, "start() the cluster first"
        broker._log_mark = broker.log.stat().st_size if broker.log.exists() else 0
        log = broker.log.open("ab")
        try:
            broker.process = subprocess.Popen(
                [*self._java(), "kafka.Kafka", str(broker.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=broker.directory,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            log.close()
        return broker

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: a real broker failure."""
        self.broker(node_id).kill()

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Every running node has logged that it started, and a client sees them all."""
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while True:
            self._check_alive()
            if all(b.started() for b in self.brokers if b.process is not None):
                break
            if time.monotonic() > deadline:
                raise ApacheKafkaError(self._not_ready("did not log that it started"))
            time.sleep(0.1)
        expected = sum(1 for b in self.brokers if b.alive)
        while True:
            seen = self.visible_brokers()
            if seen >= expected:
                return
            self._check_alive()
            if time.monotonic() > deadline:
                raise ApacheKafkaError(
                    self._not_ready(f"a client sees {seen} of {expected} brokers")
                )
            time.sleep(0.2)

    def visible_brokers(self) -> int:
        """How many brokers a client's metadata request lists now."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(self.client_config() | {"log_level": 0})
        try:
            return len(admin.list_topics(timeout=5).brokers)
        except Exception:
            return 0

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every node (SIGKILL after ``timeout``), remove what we created."""
        for broker in self.brokers:
            if broker.process is not None and broker.process.poll() is None:
                broker.process.terminate()
        deadline = time.monotonic() + timeout
        for broker in self.brokers:
            if broker.process is None:
                continue
            try:
                broker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                broker.kill()
        if self._owns_directory and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    # --- internals --------------------------------------------------------------------

    def _java(self) -> list[str]:
        log4j = self.directory / "log4j2.properties"  # type: ignore[operator]
        if not log4j.exists():
            log4j.write_text((DATA / "log4j2.properties").read_text())
        return [
            "java",
            *self.jvm_opts.split(),
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{self._lib}/*",  # Java, not the shell, expands it
        ]

    def _format_all(self) -> None:
        # only the admin: see apache_kafka_sasl for why the other users come later
        scram = sasl.format_arguments(self.users[ADMIN_USER]) if self.users is not None else []
        for broker in self.brokers:
            done = subprocess.run(
                [
                    *self._java(),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self.cluster_id,
                    "-c",
                    str(broker.config),
                    *scram,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
                raise ApacheKafkaError(f"formatting node {broker.node_id} failed:\n{tail}")

    def _check_alive(self) -> None:
        for broker in self.brokers:
            if broker.process is not None and broker.process.poll() is not None:
                raise ApacheKafkaError(
                    f"node {broker.node_id} exited with {broker.process.returncode}:\n"
                    f"{broker.log_tail()}"
                )

    def _not_ready(self, what: str) -> str:
        tails = "\n".join(f"--- node {b.node_id}:\n{b.log_tail(8)}" for b in self.brokers)
        return f"Apache Kafka {what} within {self.ready_timeout:.0f} s\n{tails}"

    def _properties(self, broker: BrokerNode) -> str:
        replication = min(3, self.nodes)
        min_isr = 2 if self.nodes >= 3 else 1
        voters = ",".join(f"{b.node_id}@127.0.0.1:{b.controller_port}" for b in self.brokers)
        # with SASL the controller listener authenticates too (apache_kafka_sasl)
        listener = controller = sasl.LISTENER if self.sasl else "PLAINTEXT"
        props: dict[str, str] = {
            "process.roles": "broker,controller",
            "node.id": str(broker.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"{listener}://127.0.0.1:{broker.port},"
            f"CONTROLLER://127.0.0.1:{broker.controller_port}",
            "advertised.listeners": f"{listener}://127.0.0.1:{broker.port}",
            "inter.broker.listener.name": listener,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": f"CONTROLLER:{controller},{listener}:{listener}",
            "log.dirs": str(broker.directory / "data"),
            "offsets.topic.replication.factor": str(replication),
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": str(replication),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(replication),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            "default.replication.factor": str(replication),
            "min.insync.replicas": str(min_isr),
            # a test's consumer group should not wait 3 s for more members
            "group.initial.rebalance.delay.ms": "0",
            # a small machine: the cleaner's 128 MB default buffer is allocated at start
            "log.cleaner.dedupe.buffer.size": "2097152",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
        }
        if self.sasl:
            props |= sasl.broker_properties(self.users[ADMIN_USER])  # type: ignore[index]
        props |= dict(self.extra_config)
        return "".join(f"{k}={v}\n" for k, v in props.items())


@contextlib.contextmanager
def apache_kafka(nodes: int = 1, **kwargs: Any) -> Iterator[ApacheKafka]:
    with ApacheKafka(nodes=nodes, **kwargs) as cluster:
        yield cluster
