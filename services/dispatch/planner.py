"""The solver in a worker process: PyVRP holds the GIL while it searches, which would
stall every consumer and HTTP request of the dispatch process. A crashed or hung worker
gives the greedy plan for that wave (and a fresh worker for the next)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from services.dispatch.solver import DEFAULT_ITERATIONS, DEFAULT_SEED, Plan, WaveInstance, plan_wave

log = logging.getLogger(__name__)

SOLVER_GRACE_SECONDS = 30.0


class SolverProcess:
    def __init__(
        self,
        *,
        in_subprocess: bool,
        iterations: int = DEFAULT_ITERATIONS,
        seed: int = DEFAULT_SEED,
    ) -> None:
        self.in_subprocess = in_subprocess
        self.iterations = iterations
        self.seed = seed
        self._pool: ProcessPoolExecutor | None = None
        self._warm_up: Future[None] | None = None

    def _solver_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process runs threads (Kafka clients, the event loop).
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def warm_up(self, time_limit_s: float) -> None:
        """Start the worker and import the solver now, not while the first wave waits."""
        if self.in_subprocess and time_limit_s > 0:
            self._warm_up = self._solver_pool().submit(_import_solver)

    async def plan(self, instance: WaveInstance, time_limit_s: float) -> Plan:
        if time_limit_s <= 0 or not self.in_subprocess:
            return _plan(instance, time_limit_s, self.iterations, self.seed)
        loop = asyncio.get_running_loop()
        try:
            # The search stops by iterations; past the limit and a margin (spawning and
            # importing, a busy machine) the worker counts as hung.
            return await asyncio.wait_for(
                loop.run_in_executor(
                    self._solver_pool(), _plan, instance, time_limit_s, self.iterations, self.seed
                ),
                timeout=time_limit_s + SOLVER_GRACE_SECONDS,
            )
        except (BrokenProcessPool, TimeoutError) as exc:
            log.error("the solver process failed (%r): greedy fallback for this wave", exc)
            self.shutdown()
            plan = plan_wave(instance, time_limit_s=0)
            plan.notes.append(f"solver process failed ({type(exc).__name__}): greedy fallback")
            return plan

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _plan(instance: WaveInstance, time_limit_s: float, iterations: int, seed: int) -> Plan:
    return plan_wave(instance, time_limit_s=time_limit_s, iterations=iterations, seed=seed)


def _import_solver() -> None:
    import pyvrp  # noqa: F401 - the import is the warm-up
