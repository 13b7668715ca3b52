"""An in-process Kafka cluster for development and tests, without Docker or Java.

librdkafka (bundled in the ``confluent-kafka`` wheel) ships a *mock cluster*: a
multi-broker server that speaks the real Kafka wire protocol over TCP on 127.0.0.1.
aiokafka and FastStream connect to it like to any broker. We reach it through ctypes
because the Python binding does not expose the mock API.

It is a development broker: it lives in memory, keeps only the newest ~5 MB per
partition, and its classic consumer groups do not support two members (see
docs/embedded-kafka.md). Production runs on Apache Kafka.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

RD_KAFKA_PRODUCER = 0


class EmbeddedKafkaUnavailable(RuntimeError):
    """The librdkafka shared library (from the confluent-kafka wheel) cannot be loaded."""


def find_librdkafka() -> Path:
    """Locate the librdkafka shared library bundled in the confluent-kafka wheel.

    The wheel names it ``librdkafka-<hash>.so.1`` and the hash changes between releases,
    so it is found by pattern. ``MICROHUB_LIBRDKAFKA`` overrides the search.
    """
    override = os.environ.get("MICROHUB_LIBRDKAFKA")
    if override:
        path = Path(override)
        if not path.is_file():
            raise EmbeddedKafkaUnavailable(
                f"MICROHUB_LIBRDKAFKA points at {path}, which is not a file"
            )
        return path
    try:
        import confluent_kafka
    except ImportError as exc:  # pragma: no cover - it is a runtime dependency
        raise EmbeddedKafkaUnavailable(
            "the embedded Kafka cluster needs the 'confluent-kafka' package "
            "(pip install confluent-kafka); or set MICROHUB_KAFKA_BOOTSTRAP_SERVERS "
            "to a real broker"
        ) from exc
    package_dir = Path(confluent_kafka.__file__).resolve().parent
    candidates = sorted(
        glob.glob(str(package_dir.parent / "confluent_kafka.libs" / "librdkafka*.so*"))
        + glob.glob(str(package_dir / ".dylibs" / "librdkafka*.dylib"))
    )
    if not candidates:
        raise EmbeddedKafkaUnavailable(
            f"no librdkafka shared library found next to {package_dir} "
            "(expected confluent_kafka.libs/librdkafka-*.so.1 from the manylinux wheel); "
            "set MICROHUB_LIBRDKAFKA to its path, or MICROHUB_KAFKA_BOOTSTRAP_SERVERS "
            "to a real broker"
        )
    return Path(candidates[0])


class _Lib:
    """ctypes declarations for the mock-cluster part of librdkafka's C API.

    Every function gets restype/argtypes: pointers default to 32-bit ints otherwise and
    the process crashes.
    """

    _instance: _Lib | None = None
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise EmbeddedKafkaUnavailable(f"cannot load {path}: {exc}") from exc
        vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        self.path = path
        specs: dict[str, tuple[object, list[object]]] = {
            "rd_kafka_conf_new": (vp, []),
            "rd_kafka_conf_set": (ci, [vp, cp, cp, cp, ctypes.c_size_t]),
            "rd_kafka_new": (vp, [ci, vp, cp, ctypes.c_size_t]),
            "rd_kafka_destroy": (None, [vp]),
            "rd_kafka_mock_cluster_new": (vp, [vp, ci]),
            "rd_kafka_mock_cluster_destroy": (None, [vp]),
            "rd_kafka_mock_cluster_bootstraps": (cp, [vp]),
            "rd_kafka_mock_topic_create": (ci, [vp, cp, ci, ci]),
            "rd_kafka_mock_broker_set_down": (ci, [vp, ctypes.c_int32]),
            "rd_kafka_mock_broker_set_up": (ci, [vp, ctypes.c_int32]),
            "rd_kafka_mock_broker_set_rtt": (ci, [vp, ctypes.c_int32, ci]),
            "rd_kafka_mock_partition_set_leader": (ci, [vp, cp, ctypes.c_int32, ctypes.c_int32]),
            "rd_kafka_mock_clear_request_errors": (None, [vp, ctypes.c_int16]),
            "rd_kafka_err2str": (cp, [ci]),
            "rd_kafka_mock_group_initial_rebalance_delay_ms": (None, [vp, ctypes.c_int32]),
        }
        for name, (restype, argtypes) in specs.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        # Variadic: (mcluster, int16 apikey, size_t cnt, rd_kafka_resp_err_t errors...)
        lib.rd_kafka_mock_push_request_errors_array.restype = None
        lib.rd_kafka_mock_push_request_errors_array.argtypes = [
            vp,
            ctypes.c_int16,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_int),
        ]
        self.lib = lib

    @classmethod
    def get(cls) -> _Lib:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(find_librdkafka())
            return cls._instance


# Kafka protocol API keys used with fault injection (see the Kafka protocol guide).
class ApiKey:
    PRODUCE = 0
    FETCH = 1
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    SYNC_GROUP = 14
    INIT_PRODUCER_ID = 22


@dataclass
class EmbeddedKafka:
    """A running mock cluster. Use as a context manager, or call ``stop()``."""

    brokers: int = 3
    # Kafka waits 3 s for more members before the first rebalance; a one-process dev
    # cluster has nobody to wait for.
    initial_rebalance_delay_ms: int = 0
    _lib: _Lib = field(init=False, repr=False)
    _rk: int | None = field(default=None, init=False, repr=False)
    _cluster: int | None = field(default=None, init=False, repr=False)
    # The mock keeps no topic configs; topics.apply_topics reads what it asked for here.
    topic_configs: dict[str, dict[str, str]] = field(default_factory=dict, init=False)

    def start(self) -> EmbeddedKafka:
        if self._cluster is not None:
            return self
        if self.brokers < 1:
            raise ValueError(f"an embedded cluster needs at least one broker, not {self.brokers}")
        self._lib = _Lib.get()
        lib = self._lib.lib
        conf = lib.rd_kafka_conf_new()
        errstr = ctypes.create_string_buffer(512)
        # The owning handle never talks to the cluster; silence its own logging.
        lib.rd_kafka_conf_set(conf, b"log_level", b"0", errstr, len(errstr))
        rk = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, len(errstr))
        if not rk:
            raise EmbeddedKafkaUnavailable(
                f"librdkafka refused to create a handle: {errstr.value.decode()}"
            )
        cluster = lib.rd_kafka_mock_cluster_new(rk, self.brokers)
        if not cluster:
            lib.rd_kafka_destroy(rk)
            raise EmbeddedKafkaUnavailable("librdkafka could not start a mock cluster")
        self._rk, self._cluster = rk, cluster
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, self.initial_rebalance_delay_ms)
        return self

    def stop(self) -> None:
        if self._cluster is None:
            return
        lib = self._lib.lib
        lib.rd_kafka_mock_cluster_destroy(self._cluster)
        lib.rd_kafka_destroy(self._rk)
        self._cluster = self._rk = None

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._cluster is not None

    def _require(self) -> int:
        if self._cluster is None:
            raise RuntimeError("the embedded Kafka cluster is not running; call start() first")
        return self._cluster

    @property
    def bootstrap_servers(self) -> list[str]:
        """The brokers' addresses, one per item (aiokafka does not split a comma list)."""
        raw = self._lib.lib.rd_kafka_mock_cluster_bootstraps(self._require())
        return [part for part in raw.decode().split(",") if part]

    def _check(self, err: int, what: str) -> None:
        if err:
            message = self._lib.lib.rd_kafka_err2str(err).decode()
            raise RuntimeError(f"embedded Kafka: {what} failed: {message}")

    def create_topic(
        self,
        topic: str,
        partitions: int = 6,
        replication_factor: int = 1,
        *,
        configs: dict[str, str] | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"topic {topic!r} needs at least one partition, not {partitions}")
        err = self._lib.lib.rd_kafka_mock_topic_create(
            self._require(), topic.encode(), partitions, min(replication_factor, self.brokers)
        )
        self._check(err, f"creating topic {topic!r}")
        self.topic_configs[topic] = dict(configs or {})

    def broker_ids(self) -> list[int]:
        return list(range(1, self.brokers + 1))

    def set_broker_down(self, broker_id: int) -> None:
        self._check(
            self._lib.lib.rd_kafka_mock_broker_set_down(self._require(), broker_id),
            f"setting broker {broker_id} down",
        )

    def set_broker_up(self, broker_id: int) -> None:
        self._check(
            self._lib.lib.rd_kafka_mock_broker_set_up(self._require(), broker_id),
            f"setting broker {broker_id} up",
        )

    def all_brokers_down(self) -> None:
        for broker_id in self.broker_ids():
            self.set_broker_down(broker_id)

    def all_brokers_up(self) -> None:
        for broker_id in self.broker_ids():
            self.set_broker_up(broker_id)

    def set_round_trip_time(self, broker_id: int, rtt_ms: int) -> None:
        self._check(
            self._lib.lib.rd_kafka_mock_broker_set_rtt(self._require(), broker_id, rtt_ms),
            f"setting the round-trip time of broker {broker_id}",
        )

    def push_request_errors(self, api_key: int, errors: list[int]) -> None:
        """Make the next ``len(errors)`` requests of ``api_key`` fail with these codes."""
        array = (ctypes.c_int * len(errors))(*errors)
        self._lib.lib.rd_kafka_mock_push_request_errors_array(
            self._require(), api_key, len(errors), array
        )

    def clear_request_errors(self, api_key: int) -> None:
        self._lib.lib.rd_kafka_mock_clear_request_errors(self._require(), api_key)
