"""A real delivery day through the dispatch's handlers on a real database: stop terms of a
v2 booking (a pickup, a time window), ETAs at planning, the proof of delivery, a late
route moving the ETAs after it, a collected pickup back at the hub, a window that closed
returning its stop, and a vehicle's reload trip as a route of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contracts.booking import BookingStopTerms, StopKind, StopTerms, TimeWindow
from contracts.common import GeoPoint
from contracts.envelope import Payload, decode, new_event
from contracts.fleet import (
    ProofOfDelivery,
    RouteFinished,
    StopDelivered,
    StopDeliveredV2,
    VehicleStatus,
    VehicleStatusChanged,
)
from services.dispatch import store
from services.dispatch.domain import StopStatus
from services.dispatch.service import DispatchService
from services.runtime.settings import Settings
from tests.support.dispatch import bike, checked_in, confirmed, consignment, write_fleet
from tests.support.hubs import TEST_HUB

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 10:00 in Berlin
SLOT = T0 + timedelta(hours=1)


@pytest.fixture
async def dispatch(
    settings: Settings, database_url: str, tmp_path: Path
) -> AsyncIterator[DispatchService]:
    config = settings.model_copy(
        update={
            "fleet_file": write_fleet(tmp_path / "fleet.yaml", bike("bike-1")),
            "dispatch_wave_min_stops": 3,
            "dispatch_wave_interval_minutes": 10,
            "dispatch_solver_time_limit_seconds": 5,
            "dispatch_solver_iterations": 200,
            "dispatch_solver_in_subprocess": False,
        }
    )
    service = DispatchService(config, config.bootstrap_list(), database_url=database_url)
    await service.migrate()
    await service.load_fleet()
    yield service
    await service.engine.dispose()


async def apply(dispatch: DispatchService, payload: Payload, at: datetime) -> None:
    await dispatch.handle(new_event(payload, source="test", subject=TEST_HUB, time=at))


async def published(dispatch: DispatchService, event_type: str) -> list[Any]:
    async with dispatch.sessions() as session:
        rows = await session.execute(
            select(store.outbox.c.payload)
            .where(store.outbox.c.event_type == event_type)
            .order_by(store.outbox.c.id)
        )
        return [decode(bytes(r[0])).data for r in rows]


def terms(booking_id: str, *stops: StopTerms) -> BookingStopTerms:
    return BookingStopTerms(
        booking_id=booking_id,
        carrier_id="acme",
        carrier_reference=f"ref-{booking_id}",
        hub_id=TEST_HUB,
        slot_start=SLOT,
        stops=list(stops),
    )


async def test_windows_pickups_etas_and_proof_reach_the_carrier(dispatch: DispatchService) -> None:
    await apply(dispatch, confirmed("b1", SLOT, consignment(3)), T0)
    window = TimeWindow(start=SLOT + timedelta(minutes=40), end=SLOT + timedelta(minutes=70))
    await apply(
        dispatch,
        terms(
            "b1",
            StopTerms(stop_id="s0", kind=StopKind.PICKUP),
            StopTerms(stop_id="s1", kind=StopKind.DELIVERY, window=window),
        ),
        T0 + timedelta(seconds=1),
    )
    await apply(dispatch, checked_in("b1", SLOT, SLOT), SLOT)  # 3 stops: the fill
    [route] = await published(dispatch, "microhub.dispatch.route_planned.v1")
    assert route.solver == "pyvrp-iterated-local-search"
    planned = {u.stop_id: u for u in await published(dispatch, "microhub.dispatch.stop_updated.v1")}
    assert {u.status.value for u in planned.values()} == {"planned"}
    assert planned["s0"].kind is StopKind.PICKUP and planned["s1"].window == window
    # the vehicle waits for the window: service at s1 starts within it
    eta_s1 = planned["s1"].eta
    assert eta_s1 is not None and window.start <= eta_s1 <= window.end
    assert all(u.eta is not None and u.eta >= SLOT for u in planned.values())
    async with dispatch.sessions() as session:
        s1 = await store.get_stop(session, "b1", "s1")
    assert s1 is not None and s1.eta == eta_s1

    # the first stop is served 20 minutes behind plan: the stops after it move too
    first = route.stops[0]
    late = planned[first.stop_id].eta + timedelta(minutes=24)  # + 4 min service
    proof = ProofOfDelivery(
        at=late,
        location=GeoPoint(lat=first.location.lat, lon=first.location.lon),
        recipient_name="K. Muster",
        signature_ref="sig/123",
    )
    delivered = StopDeliveredV2(
        vehicle_id="bike-1",
        hub_id=TEST_HUB,
        route_id=route.route_id,
        booking_id="b1",
        stop_id=first.stop_id,
        proof=proof,
    )
    await apply(dispatch, delivered, late)
    updates = (await published(dispatch, "microhub.dispatch.stop_updated.v1"))[3:]
    done = updates[0]
    assert done.stop_id == first.stop_id and done.proof == proof
    assert done.status.value == ("collected" if first.stop_id == "s0" else "delivered")
    moved = {u.stop_id: u for u in updates[1:]}
    assert {u.status.value for u in moved.values()} == {"eta_changed"}
    assert set(moved) == {s.stop_id for s in route.stops[1:]}
    for stop_id, update in moved.items():
        assert update.eta == planned[stop_id].eta + timedelta(minutes=20)

    finished = RouteFinished(
        vehicle_id="bike-1", hub_id=TEST_HUB, route_id=route.route_id, actual_km=5
    )
    # the other stops delivered too (v1 telemetry still works), then back at the hub
    for s in route.stops[1:]:
        await apply(
            dispatch,
            StopDelivered(
                vehicle_id="bike-1",
                hub_id=TEST_HUB,
                route_id=route.route_id,
                booking_id="b1",
                stop_id=s.stop_id,
            ),
            late + timedelta(minutes=30),
        )
    await apply(dispatch, finished, late + timedelta(hours=1))
    last = (await published(dispatch, "microhub.dispatch.stop_updated.v1"))[-1]
    assert (last.stop_id, last.status.value) == ("s0", "at_hub")


async def test_a_stop_whose_window_closed_goes_back_to_its_carrier(
    dispatch: DispatchService,
) -> None:
    await apply(dispatch, confirmed("b1", SLOT, consignment(1)), T0)
    closes = SLOT + timedelta(minutes=5)
    await apply(
        dispatch,
        terms(
            "b1",
            StopTerms(
                stop_id="s0", kind=StopKind.DELIVERY, window=TimeWindow(start=SLOT, end=closes)
            ),
        ),
        T0,
    )
    # the bike is out until long after the window: the wave finds no free vehicle ...
    busy = VehicleStatusChanged(vehicle_id="bike-1", hub_id=TEST_HUB, status=VehicleStatus.CHARGING)
    await apply(dispatch, busy, SLOT - timedelta(minutes=1))
    await apply(dispatch, checked_in("b1", SLOT, SLOT), SLOT)
    free = VehicleStatusChanged(
        vehicle_id="bike-1", hub_id=TEST_HUB, status=VehicleStatus.AVAILABLE
    )
    await apply(dispatch, free, SLOT + timedelta(minutes=30))  # ... and then it has closed
    async with dispatch.sessions() as session:
        stop = await store.get_stop(session, "b1", "s0")
    assert stop is not None and stop.status is StopStatus.RETURNED
    [returned] = await published(dispatch, "microhub.dispatch.stop_returned.v1")
    assert "time window closed" in returned.reason
    [update] = await published(dispatch, "microhub.dispatch.stop_updated.v1")
    assert update.status.value == "returned"
    assert await published(dispatch, "microhub.dispatch.route_planned.v1") == []


async def test_a_second_trip_is_a_route_of_its_own(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    config = settings.model_copy(
        update={
            # one bike that may reload: 3 stops of 60 kg each do not fit one 150 kg trip
            "fleet_file": write_fleet(tmp_path / "fleet.yaml", bike("bike-1", max_trips=2)),
            "dispatch_wave_min_stops": 3,
            "dispatch_solver_time_limit_seconds": 5,
            "dispatch_solver_iterations": 300,
            "dispatch_solver_in_subprocess": False,
        }
    )
    dispatch = DispatchService(config, config.bootstrap_list(), database_url=database_url)
    await dispatch.migrate()
    await dispatch.load_fleet()
    try:
        await apply(dispatch, confirmed("b1", SLOT, consignment(3, kg_per_stop=60)), T0)
        await apply(dispatch, checked_in("b1", SLOT, SLOT), SLOT)
        routes = await published(dispatch, "microhub.dispatch.route_planned.v1")
        assert [r.route_id for r in routes] == [
            f"{TEST_HUB}:w00001:bike-1",
            f"{TEST_HUB}:w00001:bike-1:t2",
        ]
        assert sum(len(r.stops) for r in routes) == 3
        assert all(r.load_kg <= 150 for r in routes)
        # the second trip is planned after the first: the bike is not free in between
        finished = RouteFinished(
            vehicle_id="bike-1", hub_id=TEST_HUB, route_id=routes[0].route_id, actual_km=3
        )
        await apply(dispatch, finished, SLOT + timedelta(hours=1))
        async with dispatch.sessions() as session:
            [bike_state] = await store.fleet_of(session, TEST_HUB)
        assert bike_state.busy_route == routes[1].route_id
    finally:
        await dispatch.engine.dispose()
