"""Wave triggers on a real database, through the handlers' code path: event time decides;
the wall-clock nudge goes through the same path and can be turned off."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.envelope import Payload, new_event
from contracts.fleet import VehicleStatus, VehicleStatusChanged
from services.dispatch import store
from services.dispatch.domain import StopStatus
from services.dispatch.service import DispatchService
from services.dispatch.solver import (
    SOLVER_GREEDY,
    SOLVER_PYVRP,
    Point,
    StopDemand,
    VehicleSpec,
    WaveInstance,
)
from services.runtime.settings import Settings
from tests.support.dispatch import bike, checked_in, confirmed, consignment, write_fleet
from tests.support.hubs import TEST_HUB

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SLOT = T0 + timedelta(hours=1)


@pytest.fixture
async def dispatch(
    settings: Settings, database_url: str, tmp_path: Path
) -> AsyncIterator[DispatchService]:
    config = settings.model_copy(
        update={
            "fleet_file": write_fleet(tmp_path / "fleet.yaml", bike("bike-1")),
            "dispatch_wave_min_stops": 5,
            "dispatch_wave_interval_minutes": 10,
            "dispatch_solver_time_limit_seconds": 0,  # the greedy: deterministic and instant
            "dispatch_solver_in_subprocess": False,
        }
    )
    service = DispatchService(config, config.bootstrap_list(), database_url=database_url)
    await service.migrate()
    await service.load_fleet()
    yield service
    await service.engine.dispose()


async def apply(dispatch: DispatchService, payload: Payload, at: datetime) -> None:
    """One record as the consumer applies it: handler and state in one transaction."""
    await dispatch.handle(new_event(payload, source="test", subject=TEST_HUB, time=at))


async def routes(dispatch: DispatchService) -> int:
    async with dispatch.sessions() as session:
        return await store.count_routes(session, TEST_HUB)


async def test_the_interval_is_measured_in_event_time(dispatch: DispatchService) -> None:
    await apply(dispatch, confirmed("b1", SLOT, consignment(2)), T0)
    await apply(dispatch, checked_in("b1", SLOT, SLOT), SLOT)
    assert await routes(dispatch) == 0  # 2 stops < 5, and no time has passed

    # any event of the hub moves its clock: telemetry 9 minutes later is not enough ...
    status = VehicleStatusChanged(
        vehicle_id="bike-1", hub_id=TEST_HUB, status=VehicleStatus.AVAILABLE, battery_pct=80
    )
    await apply(dispatch, status, SLOT + timedelta(minutes=9))
    assert await routes(dispatch) == 0
    # ... 10 minutes after the stops were queued is
    await apply(dispatch, status, SLOT + timedelta(minutes=10))
    assert await routes(dispatch) == 1
    snapshot = await dispatch.queues.snapshot(TEST_HUB)
    [route] = snapshot["routes"]
    assert route["route_id"] == f"{TEST_HUB}:w00001:bike-1"
    assert route["solver"] == "greedy-fallback"
    assert snapshot["vehicles"][0]["battery_pct"] == 80
    assert snapshot["last_wave_at"] == (SLOT + timedelta(minutes=10)).isoformat()


async def test_a_check_in_after_a_quiet_hour_waits_for_the_next_one(
    dispatch: DispatchService,
) -> None:
    """The issue's hand-driven case: the last wave was long ago, a consignment checks in
    and another a minute later. Both ride one route, planned when the first has waited
    its latest departure (10 min), not one lone route each."""
    await apply(dispatch, confirmed("b1", SLOT, consignment(2)), T0)
    await apply(dispatch, confirmed("b2", SLOT, consignment(2)), T0)
    async with dispatch.unit_of_work() as uow:
        await store.next_wave(uow.session, TEST_HUB, SLOT - timedelta(hours=2))
    await apply(dispatch, checked_in("b1", SLOT, SLOT), SLOT)
    assert await routes(dispatch) == 0
    await apply(dispatch, checked_in("b2", SLOT, SLOT), SLOT + timedelta(minutes=1))
    assert await routes(dispatch) == 0
    status = VehicleStatusChanged(
        vehicle_id="bike-1", hub_id=TEST_HUB, status=VehicleStatus.AVAILABLE, battery_pct=90
    )
    await apply(dispatch, status, SLOT + timedelta(minutes=10))
    assert await routes(dispatch) == 1
    [route] = (await dispatch.queues.snapshot(TEST_HUB))["routes"]
    assert {s["booking_id"] for s in route["stops"]} == {"b1", "b2"}


async def test_the_threshold_counts_new_stops_and_leftovers_wait(dispatch: DispatchService) -> None:
    # 6 stops of 30 kg: the single 150 kg bike takes 5, one is left over
    await apply(dispatch, confirmed("b1", SLOT, consignment(6, kg_per_stop=30)), T0)
    await apply(dispatch, checked_in("b1", SLOT, SLOT), SLOT)
    assert await routes(dispatch) == 1
    async with dispatch.sessions() as session:
        [left] = await store.stops_of_hub(session, TEST_HUB, (StopStatus.WAITING,))
    assert left.reason.startswith("wave_full")
    # the leftover alone does not trigger waves on every event; the bike is busy anyway
    await apply(dispatch, confirmed("b2", SLOT, consignment(1)), SLOT + timedelta(minutes=1))
    assert await routes(dispatch) == 1


async def test_the_nudge_goes_through_the_same_path(dispatch: DispatchService) -> None:
    await apply(dispatch, confirmed("b1", SLOT, consignment(2)), T0)
    await apply(dispatch, checked_in("b1", SLOT, SLOT), SLOT)
    assert await dispatch.nudge(now=SLOT + timedelta(minutes=5)) == 0
    assert await dispatch.nudge(now=SLOT + timedelta(minutes=10)) == 1
    assert await dispatch.nudge(now=SLOT + timedelta(minutes=30)) == 0  # nothing left
    assert await routes(dispatch) == 1


async def test_the_nudge_timer_is_on_by_default_and_can_be_turned_off(
    settings: Settings, tmp_path: Path
) -> None:
    assert Settings().dispatch_wave_nudge_seconds > 0
    for seconds, timers in ((60.0, 1), (0.0, 0)):
        config = settings.model_copy(
            update={
                "fleet_file": write_fleet(tmp_path / "fleet.yaml"),
                "dispatch_wave_nudge_seconds": seconds,
            }
        )
        service = DispatchService(
            config,
            config.bootstrap_list(),
            database_url=f"sqlite+aiosqlite:///{tmp_path / f'{timers}.db'}",
        )
        await service.migrate()
        await service.on_start()
        try:
            names = [task.get_name() for task in service._tasks]
            assert names.count("dispatch-wave-nudge") == timers
            # pruning the live queue's change log is not a wave timer: always on
            assert "dispatch-change-log-prune" in names
        finally:
            for task in service._tasks:
                task.cancel()
            if service.solver._pool is not None:  # the solver's warm-up: its threads end with it
                service.solver._pool.shutdown(wait=True)
            await service.engine.dispose()


async def test_a_dead_solver_process_means_the_greedy_for_that_wave(
    settings: Settings, tmp_path: Path
) -> None:
    config = settings.model_copy(
        update={
            "fleet_file": write_fleet(tmp_path / "fleet.yaml"),
            "dispatch_solver_in_subprocess": True,
        }
    )
    service = DispatchService(
        config, config.bootstrap_list(), database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    )
    instance = WaveInstance(
        Point(52.52, 13.40),
        [StopDemand("a", Point(52.53, 13.41), 1, 2, 0.1)],
        [VehicleSpec("bike-1", 40, 150, 1.5, 60, 15, 480)],
    )
    try:
        healthy = await service.solver.plan(instance, 0.5)
        assert healthy.solver == SOLVER_PYVRP and not healthy.notes
        with pytest.raises(BrokenProcessPool):  # the worker dies
            await asyncio.wrap_future(service.solver._solver_pool().submit(os._exit, 1))
        fallback = await service.solver.plan(instance, 0.5)
        assert fallback.solver == SOLVER_GREEDY
        assert "solver process failed" in fallback.notes[0]
        assert [r.stop_keys for r in fallback.routes] == [("a",)]
        again = await service.solver.plan(instance, 0.5)  # a fresh worker for the next wave
        assert again.solver == SOLVER_PYVRP
    finally:
        await service.stop()


async def test_the_waiting_queue_numbers_are_those_of_the_waiting_rows(
    dispatch: DispatchService,
) -> None:
    """maybe_plan decides on an aggregate of the waiting stops and loads them only when a
    wave is due: the aggregate must say what the rows say (the former code path)."""
    await apply(dispatch, confirmed("b1", SLOT, consignment(6)), T0)
    await apply(dispatch, confirmed("b2", SLOT, consignment(2)), T0)  # expected: not counted
    queued = [SLOT + timedelta(minutes=m, microseconds=7) for m in (3, 1, 4, 1, 5)]
    async with dispatch.sessions() as session, session.begin():
        for i, at in enumerate(queued):
            await store.set_stop(session, "b1", f"s{i}", now=at, status="waiting", queued_at=at)
        # a waiting stop without a queue time counts as waiting, neither fresh nor oldest
        await store.set_stop(session, "b1", "s5", now=SLOT, status="waiting")

    async with dispatch.sessions() as session:
        rows = await store.stops_of_hub(session, TEST_HUB, (StopStatus.WAITING,))
        assert len(rows) == 6
        for last_wave_at in (None, T0, queued[1], queued[0], queued[4], SLOT + timedelta(hours=1)):
            times = [s.queued_at for s in rows if s.queued_at is not None]
            new = [q for q in times if last_wave_at is None or q > last_wave_at]
            queue = await store.waiting_queue(session, TEST_HUB, last_wave_at)
            assert queue == store.WaitingQueue(
                len(rows), len(new), min(times), min(new, default=None)
            ), last_wave_at
            assert queue.oldest_queued_at is not None
            assert queue.oldest_queued_at.tzinfo is UTC
            assert queue.oldest_fresh_at is None or queue.oldest_fresh_at.tzinfo is UTC
        assert await store.waiting_queue(session, "no-such-hub", None) == store.WaitingQueue(
            0, 0, None, None
        )
