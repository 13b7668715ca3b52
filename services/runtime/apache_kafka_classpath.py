"""The Apache Kafka broker's classpath, resolved from Maven Central: the jars that
``apache_kafka`` runs its nodes on.

Apache Kafka publishes its broker as ordinary Maven artifacts (``org.apache.kafka:
kafka_2.13``). ``data/apache-kafka/pom.xml`` pins the version and adds the logging backend
the tarball ships but no POM carries; Maven resolves the classpath once into a cache
folder (``~/.cache/microhub/apache-kafka/<version>/lib``, or ``MICROHUB_APACHE_KAFKA_CACHE``).

Apart from running the nodes: this part needs only ``java`` and ``mvn`` on PATH and a
network once, and ``microhub kafka apache --resolve-only`` and the test fixtures' "can
we have a broker here?" use it alone. ``apache_kafka`` re-exports its public names.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

DATA = resources.files("services.runtime") / "data" / "apache-kafka"


class ApacheKafkaUnavailable(RuntimeError):
    """Java or Maven is missing, or the broker's jars could not be resolved."""


def kafka_version() -> str:
    """The pinned Apache Kafka version (from the POM)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", _pom_text())
    assert match is not None, "data/apache-kafka/pom.xml names no kafka.version"
    return match.group(1)


def _pom_text() -> str:
    return (DATA / "pom.xml").read_text()


def missing_tools() -> str | None:
    """Why the broker cannot be had here (no working ``java`` or ``mvn``), or None."""
    for tool, args in (("java", ["-version"]), ("mvn", ["-v"])):
        path = shutil.which(tool)
        if path is None:
            return f"'{tool}' is not on PATH (Apache Kafka needs Java 17+ and Maven 3.6+)"
        try:
            done = subprocess.run([path, *args], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"'{tool} {' '.join(args)}' failed: {exc}"
        if done.returncode != 0:
            return f"'{tool} {' '.join(args)}' exited with {done.returncode}"
    return None


def cache_root() -> Path:
    configured = os.environ.get("MICROHUB_APACHE_KAFKA_CACHE")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "microhub" / "apache-kafka"


def resolve_classpath(*, say: Callable[[str], None] = lambda _: None) -> Path:
    """The folder of the broker's jars, resolved by Maven on first use and cached (keyed by
    the POM's digest, so a version change resolves again). Safe to call from several
    processes at once: they queue on a file lock."""
    reason = missing_tools()
    if reason:
        raise ApacheKafkaUnavailable(reason)
    pom = _pom_text()
    digest = hashlib.sha256(pom.encode()).hexdigest()[:16]
    home = cache_root() / f"{kafka_version()}-{digest}"
    lib = home / "lib"
    if (home / "complete").is_file():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / "complete").is_file():
            return lib
        say(f"resolving Apache Kafka {kafka_version()} from Maven Central into {lib} …")
        started = time.monotonic()
        (home / "pom.xml").write_text(pom)
        staging = home / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            done = subprocess.run(
                [
                    "mvn",
                    "-B",
                    "-q",
                    "-f",
                    str(home / "pom.xml"),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
        except subprocess.TimeoutExpired as exc:
            raise ApacheKafkaUnavailable("Maven did not resolve the broker in 15 min") from exc
        jars = list(staging.glob("kafka_2.13-*.jar")) if staging.is_dir() else []
        if done.returncode != 0 or not jars:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise ApacheKafkaUnavailable(
                f"Maven could not resolve org.apache.kafka:kafka_2.13:{kafka_version()} "
                f"(exit {done.returncode}; is Maven Central reachable?):\n{tail}"
            )
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
        (home / "complete").write_text(f"{time.monotonic() - started:.1f} s\n")
        say(f"resolved {len(list(lib.glob('*.jar')))} jars in {time.monotonic() - started:.1f} s")
    return lib
