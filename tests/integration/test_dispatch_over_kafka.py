"""The dispatch service over a real Kafka wire protocol and real databases: booking
events (as the booking service publishes them) and vehicle telemetry in, dispatch events
out through the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.fleet import (
    RouteFinished,
    StopDelivered,
    StopFailed,
    VehicleStatus,
    VehicleStatusChanged,
)
from services.dispatch import store
from services.dispatch.domain import StopStatus
from services.dispatch.service import DispatchService
from services.runtime.settings import Settings
from tests.support.carrier import TopicReader
from tests.support.dispatch import Publisher, bike, checked_in, confirmed, consignment, write_fleet
from tests.support.hubs import TEST_HUB
from tests.support.waiting import eventually

# Tomorrow at 06:00 UTC: the events of a test (up to ~2 h after SLOT) stay within one
# day at the test hub (Europe/Berlin), whatever the hour the suite runs at; from the
# wall clock, the tests failed every evening, once their events crossed local midnight
# into the next day's dispatch.
NOW = (datetime.now(UTC) + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
SLOT = NOW + timedelta(hours=1)


StartDispatch = Callable[..., Awaitable[DispatchService]]


@pytest.fixture
async def start_dispatch(
    settings: Settings, topics: list[str], database_url: str, tmp_path: Path
) -> AsyncIterator[StartDispatch]:
    started: list[DispatchService] = []

    async def start(*vehicles: dict[str, Any], **overrides: Any) -> DispatchService:
        config = settings.model_copy(
            update={
                "fleet_file": write_fleet(tmp_path / "fleet.yaml", *vehicles),
                "dispatch_wave_min_stops": 3,
                "dispatch_wave_interval_minutes": 10,
                "dispatch_solver_time_limit_seconds": 0.3,
                "dispatch_solver_in_subprocess": False,
                "dispatch_wave_nudge_seconds": 0,
                **overrides,
            }
        )
        service = DispatchService(config, config.bootstrap_list(), database_url=database_url)
        await service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        if service.started:
            await service.stop()


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[Publisher]:
    async with Publisher(settings.bootstrap_list(), settings.topic) as p:
        yield p


@pytest.fixture
async def dispatched(settings: Settings, topics: list[str]) -> AsyncIterator[TopicReader]:
    async with TopicReader(
        settings.bootstrap_list(), settings.topic("microhub.dispatch.events.v1")
    ) as r:
        yield r


async def test_checked_in_stops_are_planned_started_and_completed(
    start_dispatch: StartDispatch, publisher: Publisher, dispatched: TopicReader
) -> None:
    # the worker-process solver, as in production
    dispatch = await start_dispatch(dispatch_solver_in_subprocess=True)
    await publisher.send(confirmed("b1", SLOT, consignment(4)), time=NOW)
    # expected load is shown but not dispatchable: nothing is planned before the check-in
    await eventually(
        lambda: dispatch.consumer("dispatch-bookings").stats.processed == 1,
        what="dispatch to apply the confirmation",
    )
    before = await dispatch.queues.snapshot(TEST_HUB)
    assert [s["status"] for s in before["stops"]] == ["expected"] * 4
    assert before["routes"] == [] and dispatched.of_type("route_planned.v1") == []
    await publisher.send(checked_in("b1", SLOT, SLOT), time=SLOT)
    [planned] = await dispatched.wait_count(1, suffix="route_planned.v1")
    route = planned["data"]
    assert planned["subject"] == TEST_HUB
    assert sorted(s["stop_id"] for s in route["stops"]) == ["s0", "s1", "s2", "s3"]
    assert [s["sequence"] for s in route["stops"]] == [1, 2, 3, 4]
    assert route["load_parcels"] == 8 and route["load_kg"] == pytest.approx(32)
    assert route["solver"] == "pyvrp-iterated-local-search"
    assert route["city_id"] == "testcity" and route["vehicle_type"] == "e_cargo_bike"
    assert route["route_id"] == f"{TEST_HUB}:w00001:{route['vehicle_id']}"
    assert 0 < route["planned_km"] < 30

    vehicle, route_id = route["vehicle_id"], route["route_id"]
    states = {
        v["vehicle_id"]: v["state"] for v in (await dispatch.queues.snapshot(TEST_HUB))["vehicles"]
    }
    assert states[vehicle] == "loading" and list(states.values()).count("free") == 1
    t = SLOT + timedelta(minutes=5)
    await publisher.send(
        VehicleStatusChanged(
            vehicle_id=vehicle, hub_id=TEST_HUB, status=VehicleStatus.ON_ROUTE, battery_pct=90
        ),
        time=t,
    )
    [started] = await dispatched.wait_count(1, suffix="route_started.v1")
    assert started["data"]["route_id"] == route_id
    running = await dispatch.queues.snapshot(TEST_HUB)
    assert {v["vehicle_id"]: v["state"] for v in running["vehicles"]}[vehicle] == "on_route"
    assert running["routes"][0]["status"] == "running"
    for i, stop in enumerate(route["stops"]):
        await publisher.send(
            StopDelivered(
                vehicle_id=vehicle,
                hub_id=TEST_HUB,
                route_id=route_id,
                booking_id="b1",
                stop_id=stop["stop_id"],
            ),
            time=t + timedelta(minutes=5 * (i + 1)),
        )
    await publisher.send(
        RouteFinished(
            vehicle_id=vehicle, hub_id=TEST_HUB, route_id=route_id, actual_km=12.5, energy_kwh=0.2
        ),
        time=t + timedelta(minutes=40),
    )
    [completed] = await dispatched.wait_count(1, suffix="route_completed.v1")
    data = completed["data"]
    assert data["actual_km"] == 12.5 and data["energy_kwh"] == 0.2
    assert data["planned_km"] == route["planned_km"]
    assert sorted(s["stop_id"] for s in data["delivered"]) == ["s0", "s1", "s2", "s3"]
    assert data["failed"] == []
    assert len(dispatched.of_type("route_started.v1")) == 1  # deliveries do not restart it

    snapshot = await dispatch.queues.snapshot(TEST_HUB)
    assert snapshot["stops"] == [] and snapshot["routes"] == []
    assert snapshot["completed"][0]["actual_km"] == 12.5
    assert {v["vehicle_id"]: v["free"] for v in snapshot["vehicles"]} == {
        "bike-1": True,
        "bike-2": True,
    }


async def test_a_failed_stop_comes_back_and_is_returned_after_three_failures(
    start_dispatch: StartDispatch, publisher: Publisher, dispatched: TopicReader
) -> None:
    dispatch = await start_dispatch(bike("bike-1"), dispatch_wave_min_stops=1)
    await publisher.send(confirmed("b2", SLOT, consignment(1)), time=NOW)
    await publisher.send(checked_in("b2", SLOT, SLOT), time=SLOT)
    t = SLOT
    for attempt in (1, 2, 3):
        plans = await dispatched.wait_count(attempt, suffix="route_planned.v1")
        route_id = plans[-1]["data"]["route_id"]
        assert route_id == f"{TEST_HUB}:w{attempt:05d}:bike-1"
        t += timedelta(minutes=30)
        await publisher.send(
            StopFailed(
                vehicle_id="bike-1",
                hub_id=TEST_HUB,
                route_id=route_id,
                booking_id="b2",
                stop_id="s0",
                reason="recipient_absent",
            ),
            time=t,
        )
        await publisher.send(
            RouteFinished(vehicle_id="bike-1", hub_id=TEST_HUB, route_id=route_id, actual_km=3.0),
            time=t + timedelta(minutes=10),
        )
        completed = await dispatched.wait_count(attempt, suffix="route_completed.v1")
        assert completed[-1]["data"]["failed"] == [{"booking_id": "b2", "stop_id": "s0"}]
        if attempt < 3:
            # back in the queue, and (one stop is the threshold here) planned again at once
            await dispatched.wait_count(attempt + 1, suffix="route_planned.v1")
            async with dispatch.sessions() as session:
                stop = await store.get_stop(session, "b2", "s0")
            assert stop.attempts == attempt
    [returned] = await dispatched.wait_count(1, suffix="stop_returned.v1")
    assert returned["data"]["attempts"] == 3 and returned["data"]["stop_id"] == "s0"
    assert returned["data"]["carrier_id"] == "acme"
    async with dispatch.sessions() as session:
        stop = await store.get_stop(session, "b2", "s0")
    assert stop.status is StopStatus.RETURNED
    assert len(dispatched.of_type("route_planned.v1")) == 3
    # no ON_ROUTE status came: each route started with its first stop event
    assert len(dispatched.of_type("route_started.v1")) == 3


async def test_redelivered_and_resent_events_plan_nothing_twice(
    start_dispatch: StartDispatch, publisher: Publisher, dispatched: TopicReader
) -> None:
    dispatch = await start_dispatch()
    confirm = await publisher.send(confirmed("b3", SLOT, consignment(3)), time=NOW)
    check_in = await publisher.send(checked_in("b3", SLOT, SLOT), time=SLOT)
    await dispatched.wait_count(1, suffix="route_planned.v1")
    # Kafka redelivers both (same event ids) and the booking service resends the
    # confirmation under a new id (its outbox after a crash): nothing is planned again.
    await publisher.resend(confirm, key=TEST_HUB)
    await publisher.resend(check_in, key=TEST_HUB)
    await publisher.send(confirmed("b3", SLOT, consignment(3)), time=SLOT + timedelta(minutes=1))
    await publisher.send(checked_in("b3", SLOT, SLOT), time=SLOT + timedelta(minutes=20))
    # a later, different booking proves the consumer got past all of them
    await publisher.send(confirmed("b4", SLOT, consignment(3)), time=SLOT + timedelta(minutes=21))
    await publisher.send(checked_in("b4", SLOT, SLOT), time=SLOT + timedelta(minutes=22))
    plans = await dispatched.wait_count(2, suffix="route_planned.v1")
    await dispatch.relay.flush()
    assert len(dispatched.of_type("route_planned.v1")) == 2
    assert sorted({s["booking_id"] for p in plans for s in p["data"]["stops"]}) == ["b3", "b4"]
    assert dispatch.consumer("dispatch-bookings").stats.duplicates == 2
    async with dispatch.sessions() as session:
        assert await store.count_routes(session, TEST_HUB) == 2
        stops = await store.stops_of_booking(session, "b3")
    assert len(stops) == 3 and {s.status for s in stops} == {StopStatus.PLANNED}


async def test_stops_no_vehicle_can_take_wait_with_a_reason_and_poison_goes_to_the_dlq(
    start_dispatch: StartDispatch, publisher: Publisher, dispatched: TopicReader, settings: Settings
) -> None:
    dispatch = await start_dispatch(bike("bike-1", capacity={"parcels": 40, "kg": 20, "m3": 1.5}))
    await publisher.send_raw(b"{not json", topic="microhub.fleet.telemetry.v1", key="bike-1")
    await publisher.send(confirmed("b5", SLOT, consignment(3, kg_per_stop=30)), time=NOW)
    await publisher.send(checked_in("b5", SLOT, SLOT), time=SLOT)
    await publisher.send(confirmed("b6", SLOT, consignment(3)), time=SLOT + timedelta(minutes=1))
    await publisher.send(checked_in("b6", SLOT, SLOT), time=SLOT + timedelta(minutes=2))
    [planned] = await dispatched.wait_count(1, suffix="route_planned.v1")
    assert {s["booking_id"] for s in planned["data"]["stops"]} == {"b6"}
    snapshot = await dispatch.queues.snapshot(TEST_HUB)
    waiting = [s for s in snapshot["stops"] if s["booking_id"] == "b5"]
    assert len(waiting) == 3
    assert all(s["status"] == "waiting" and s["reason"].startswith("too_heavy") for s in waiting)
    async with TopicReader(
        settings.bootstrap_list(), settings.topic("microhub.fleet.telemetry.v1.dlq")
    ) as dlq:
        await dlq.wait_for(lambda r: len(r.records) >= 1, what="the DLQ")
        [poison] = dlq.records
    assert poison.value == b"{not json"
    assert dispatch.dead_lettered == 1
