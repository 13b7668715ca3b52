"""Where a machine's CPU goes while one booking process decides: the service, PostgreSQL,
the Kafka broker and the rest (the bench's own reader, the kernel's network work), read
from /proc before and after, and what that makes the most decisions/s this machine could
give with every core busy.

Why: on a machine that also runs the broker and PostgreSQL, a decision costs more than
the service's own CPU. Throughput is bounded by cores * 1 s / (CPU of all of them per
decision), however little the service waits; that bound says what a throughput goal
would take here and on a larger machine (docs/booking-throughput.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class Sample:
    """CPU seconds used so far: the whole machine (all cores, not idle), the service,
    PostgreSQL's processes and the Kafka broker's (those on this machine)."""

    machine: float
    service: float
    postgres: float
    broker: float

    def __sub__(self, other: Sample) -> Sample:
        return Sample(
            self.machine - other.machine,
            self.service - other.service,
            self.postgres - other.postgres,
            self.broker - other.broker,
        )


def _busy_seconds() -> float:
    """All cores' time not idle and not waiting for I/O, from /proc/stat's first line."""
    fields = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICKS  # user … steal; guest time is inside user


def _stat(pid: str) -> tuple[str, int, list[int]] | None:
    """(command name, parent pid, the numeric fields from utime on) of a process."""
    try:
        text = (PROC / pid / "stat").read_text()
    except OSError:  # it ended between the listing and the read
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    return name, int(rest[1]), [int(v) for v in rest[11:15]]


def _cmdline(pid: str) -> bytes:
    try:
        return (PROC / pid / "cmdline").read_bytes()
    except OSError:
        return b""


def sample(service_pid: int) -> Sample:
    """What the machine, the service (``service_pid``), every PostgreSQL process and
    every Kafka broker here have used so far. A PostgreSQL backend that ended is in its
    postmaster's reaped children's time (cutime + cstime), so connections that come and
    go between two samples are counted."""
    stats = {pid: s for pid in os.listdir(PROC) if pid.isdigit() and (s := _stat(pid))}
    postgres = broker = service = 0
    for pid, (name, parent, (utime, stime, cutime, cstime)) in stats.items():
        if int(pid) == service_pid:
            service = utime + stime
        elif name == "postgres":
            postgres += utime + stime
            parent_stat = stats.get(str(parent))
            if parent_stat is None or parent_stat[0] != "postgres":  # the postmaster
                postgres += cutime + cstime
        elif name == "java" and b"kafka.Kafka" in _cmdline(pid):
            broker += utime + stime
    return Sample(_busy_seconds(), service / TICKS, postgres / TICKS, broker / TICKS)


@dataclass(frozen=True)
class Budget:
    """CPU µs per decision over a measured stretch, by where it went."""

    machine_us: float
    service_us: float
    postgres_us: float
    broker_us: float

    @property
    def rest_us(self) -> float:
        """The bench's reader, the kernel's loopback work, anything else running."""
        return self.machine_us - self.service_us - self.postgres_us - self.broker_us

    def most_per_second(self, cores: int) -> float:
        """Decisions/s if all ``cores`` did nothing but this, at this cost."""
        return cores * 1e6 / self.machine_us if self.machine_us > 0 else float("inf")


def budget(before: Sample, after: Sample, decisions: int) -> Budget:
    used = after - before
    per = 1e6 / decisions
    return Budget(used.machine * per, used.service * per, used.postgres * per, used.broker * per)
