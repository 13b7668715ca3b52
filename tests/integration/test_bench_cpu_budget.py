"""The bench's CPU budget (bench/cpu_budget.py) counts what it claims to: a process's own
CPU, and PostgreSQL's, including a backend that has already ended (its CPU is then in
the postmaster's reaped children's time). The throughput bench's bounds are computed
from these figures, so a backend missed would make this machine look roomier than it is."""

from __future__ import annotations

import asyncio
import os
import time

import asyncpg
import pytest

from bench import cpu_budget
from tests.support.postgres import _plain


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


def _reaped(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` is gone (ended and reaped) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


async def test_a_postgres_backend_that_ended_is_still_counted(postgres_url: str) -> None:
    if not any(
        (stat := cpu_budget._stat(pid)) and stat[0] == "postgres"
        for pid in os.listdir("/proc")
        if pid.isdigit()
    ):
        pytest.skip("the PostgreSQL under test runs on another machine: its CPU is not here")
    before = cpu_budget.sample(os.getpid())
    connection = await asyncpg.connect(_plain(postgres_url))
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    started = time.perf_counter()
    # CPU-bound in one backend: its wall time is about its CPU time
    await connection.fetchval("SELECT count(*) FROM generate_series(1, 4000000)")
    busy = time.perf_counter() - started
    await connection.close()
    # until the postmaster has reaped it: its CPU is then only in the postmaster's
    # children's time
    assert await asyncio.to_thread(_reaped, pid, 10.0), "the backend did not end"
    used = cpu_budget.sample(os.getpid()) - before
    assert used.postgres >= 0.5 * busy, (used, busy)
