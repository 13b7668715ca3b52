"""The bench's CPU budget (bench/cpu_budget.py) counts what it claims to: a process's own
CPU, and PostgreSQL's, including a backend that has already ended (its CPU is then in
the postmaster's reaped children's time). The throughput bench's bounds are computed
from these figures, so a backend missed would make this machine look roomier than it is."""

from __future__ import annotations

import asyncio
import os
import select
import time
from pathlib import Path

import asyncpg
import pytest

from bench import cpu_budget
from tests.support.postgres import _plain, throwaway_cluster


def _burn(seconds: float) -> float:
    """Spend about ``seconds`` of this thread's CPU; returns what it spent."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        sum(range(10_000))
    return time.thread_time() - start


def test_the_service_and_the_machine_are_charged_what_a_process_spends() -> None:
    before = cpu_budget.sample(os.getpid())
    spent = _burn(0.3)
    after = cpu_budget.sample(os.getpid())
    used = after - before
    tick = 1 / cpu_budget.TICKS
    assert used.service >= spent - 2 * tick
    assert used.machine >= used.service - 2 * tick
    per_decision = cpu_budget.budget(before, after, decisions=1000)
    assert per_decision.service_us == pytest.approx(used.service * 1e3)
    assert per_decision.most_per_second(2) == pytest.approx(2e6 / per_decision.machine_us)


def _process(proc: Path, pid: int, name: str, parent: int, times: tuple[int, int, int, int],
             cmdline: bytes = b"") -> None:  # fmt: skip
    """A process as /proc shows it: utime, stime, cutime, cstime in clock ticks."""
    (proc / str(pid)).mkdir()
    fields = ["S", str(parent), *["0"] * 9, *map(str, times), *["0"] * 30]
    (proc / str(pid) / "stat").write_text(f"{pid} ({name}) {' '.join(fields)}\n")
    (proc / str(pid) / "cmdline").write_bytes(cmdline)


def test_the_postmaster_s_reaped_backends_count_and_no_one_else_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text("cpu  100 0 50 900 10 0 5 0 0 0\ncpu0 1 2 3 4\n")
    _process(proc, 10, "postgres", 1, (10, 5, 100, 20))  # the postmaster: ended backends
    _process(proc, 11, "postgres", 10, (3, 1, 7, 7))  # a backend: its children are not ours
    _process(proc, 20, "java", 1, (40, 2, 0, 0), b"java\0kafka.Kafka\0server.properties")
    _process(proc, 21, "java", 1, (99, 0, 0, 0), b"java\0some.Other")  # not a broker
    _process(proc, 30, "microhub", 1, (50, 8, 0, 0))
    _process(proc, 31, "bash", 1, (70, 0, 500, 0))  # another process's children: not counted
    monkeypatch.setattr(cpu_budget, "PROC", proc)
    tick = cpu_budget.TICKS
    assert cpu_budget.sample(30) == cpu_budget.Sample(
        machine=(100 + 50 + 5) / tick,  # user + system + softirq; idle and iowait left out
        service=58 / tick,
        postgres=(10 + 5 + 100 + 20 + 3 + 1) / tick,
        broker=42 / tick,
    )


def _ended(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` ends within ``timeout`` seconds (its pidfd turns readable
    when it does)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # gone already
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


async def _busy_backend(url: str) -> tuple[int, float]:
    """A backend that spends about a second of CPU, then ends: its pid and wall time."""
    connection = await asyncpg.connect(_plain(url))
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    started = time.perf_counter()
    # CPU-bound in one backend: its wall time is about its CPU time
    await connection.fetchval("SELECT count(*) FROM generate_series(1, 4000000)")
    busy = time.perf_counter() - started
    await connection.close()
    return pid, busy


def test_a_postgres_backend_that_ended_is_still_counted() -> None:
    # a cluster of its own on this machine, whichever server the suite was given (a
    # configured one may run elsewhere, where /proc cannot see it)
    with throwaway_cluster() as url:
        before = cpu_budget.sample(os.getpid())
        pid, busy = asyncio.run(_busy_backend(url))
        # ended: its CPU is in its own entry while it is a zombie, in the postmaster's
        # children's time once reaped (the test above holds that part exactly)
        assert _ended(pid, 10.0), "the backend did not end"
        used = cpu_budget.sample(os.getpid()) - before
    assert used.postgres >= 0.5 * busy, (used, busy)
