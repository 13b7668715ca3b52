"""A real delivery day over Kafka: waves wait for the hub's departure, the proof of
delivery reaches the carrier, and an operator's pin survives a re-plan. Dispatch runs
with consumers and outbox on a real broker; booking events and telemetry are published
as their producers would, in simulated (future) time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from contracts.booking import BookingStopTerms, StopKind, StopTerms, TimeWindow
from contracts.common import GeoPoint
from contracts.dispatch import DispatcherActionKind as Kind
from contracts.fleet import (
    ProofOfDelivery,
    StopDeliveredV2,
    VehicleStatus,
    VehicleStatusChanged,
)
from services.dispatch.control import Action
from services.dispatch.service import DispatchService
from services.runtime.settings import Settings
from tests.support.carrier import TopicReader, monday_after
from tests.support.dispatch import Publisher, bike, checked_in, confirmed, consignment, write_fleet
from tests.support.hubs import TEST_HUB
from tests.support.waiting import eventually

# a Monday in the future, 10:00 UTC = 11:00 in Berlin (the test hub's zone) in winter,
# 12:00 in summer: times below are local via LOCAL
MONDAY = monday_after(datetime.now(UTC), weeks=1)
LOCAL = MONDAY.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()


def at(hhmm: str) -> datetime:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    assert LOCAL is not None
    return MONDAY + timedelta(hours=hours, minutes=minutes) - LOCAL


StartDispatch = Callable[..., Awaitable[DispatchService]]


@pytest.fixture
async def start_dispatch(
    settings: Settings, topics: list[str], database_url: str, tmp_path: Path
) -> AsyncIterator[StartDispatch]:
    started: list[DispatchService] = []

    async def start(waves: dict[str, Any], **overrides: Any) -> DispatchService:
        path = write_fleet(tmp_path / "fleet.yaml", bike("bike-1"), bike("bike-2"))
        document = yaml.safe_load(path.read_text())
        document["hubs"][0]["waves"] = waves
        path.write_text(yaml.safe_dump(document))
        config = settings.model_copy(
            update={
                "fleet_file": path,
                "dispatch_solver_time_limit_seconds": 5,
                "dispatch_solver_iterations": 200,
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


async def applied(dispatch: DispatchService, consumer: str, n: int) -> None:
    await eventually(
        lambda: dispatch.consumer(consumer).stats.processed >= n,
        what=f"{consumer} to apply {n} records",
    )


async def test_a_wave_waits_for_the_departure(
    start_dispatch: StartDispatch, publisher: Publisher, dispatched: TopicReader
) -> None:
    dispatch = await start_dispatch({"departures": ["11:30"], "min_stops": 50})
    await publisher.send(confirmed("b1", at("11:00"), consignment(2)), time=at("09:00"))
    await publisher.send(confirmed("b2", at("11:00"), consignment(2)), time=at("09:00"))
    await publisher.send(checked_in("b1", at("11:00"), at("11:05")), time=at("11:05"))
    await publisher.send(checked_in("b2", at("11:00"), at("11:15")), time=at("11:15"))
    await applied(dispatch, "dispatch-bookings", 4)
    assert dispatched.of_type("route_planned.v1") == []  # no lone route before 11:30
    free = VehicleStatusChanged(
        vehicle_id="bike-1", hub_id=TEST_HUB, status=VehicleStatus.AVAILABLE
    )
    await publisher.send(free, time=at("11:29"))
    await applied(dispatch, "dispatch-telemetry", 1)
    assert dispatched.of_type("route_planned.v1") == []
    await publisher.send(free, time=at("11:31"))  # the first event after the departure
    [route] = await dispatched.wait_count(1, suffix="route_planned.v1")
    assert {s["booking_id"] for s in route["data"]["stops"]} == {"b1", "b2"}


async def test_the_proof_of_delivery_reaches_the_carrier(
    start_dispatch: StartDispatch, publisher: Publisher, dispatched: TopicReader
) -> None:
    await start_dispatch({"min_stops": 2})
    await publisher.send(confirmed("b1", at("11:00"), consignment(2)), time=at("09:00"))
    window = TimeWindow(start=at("12:00"), end=at("13:00"))
    terms = BookingStopTerms(
        booking_id="b1",
        carrier_id="acme",
        carrier_reference="ref-b1",
        hub_id=TEST_HUB,
        slot_start=at("11:00"),
        stops=[
            StopTerms(stop_id="s0", kind=StopKind.DELIVERY, window=window),
            StopTerms(stop_id="s1", kind=StopKind.PICKUP),
        ],
    )
    await publisher.send(terms, time=at("09:00"))
    await publisher.send(checked_in("b1", at("11:00"), at("11:05")), time=at("11:05"))
    [planned] = await dispatched.wait_count(1, suffix="route_planned.v1")
    route = planned["data"]
    updates = await dispatched.wait_count(2, suffix="stop_updated.v1")
    etas = {u["data"]["stop_id"]: u["data"]["eta"] for u in updates}
    assert all(u["data"]["carrier_id"] == "acme" for u in updates)
    assert window.start <= datetime.fromisoformat(etas["s0"]) <= window.end

    proof = ProofOfDelivery(
        at=at("12:10"),
        location=GeoPoint(lat=52.5, lon=13.38),
        recipient_name="K. Muster",
        photo_ref="pod/b1-s0.jpg",
    )
    await publisher.send(
        StopDeliveredV2(
            vehicle_id=route["vehicle_id"],
            hub_id=TEST_HUB,
            route_id=route["route_id"],
            booking_id="b1",
            stop_id="s0",
            proof=proof,
        ),
        time=at("12:11"),
    )
    await dispatched.wait_for(
        lambda r: any(e["data"].get("status") == "delivered" for e in r.of_type("stop_updated.v1")),
        what="the delivery with its proof",
    )
    [delivered] = [
        e for e in dispatched.of_type("stop_updated.v1") if e["data"]["status"] == "delivered"
    ]
    assert delivered["data"]["carrier_id"] == "acme" and delivered["data"]["stop_id"] == "s0"
    assert delivered["data"]["proof"] == proof.model_dump(mode="json")


async def test_an_operators_pin_survives_a_replan(
    start_dispatch: StartDispatch, publisher: Publisher, dispatched: TopicReader
) -> None:
    dispatch = await start_dispatch({"release": "review", "min_stops": 3})
    dispatch.control.clock = lambda: at("11:10")
    await publisher.send(confirmed("b1", at("11:00"), consignment(3)), time=at("09:00"))
    await applied(dispatch, "dispatch-bookings", 1)
    pin = Action(
        Kind.PIN,
        by="operator:test-hub",
        reason="the customer knows this rider",
        booking_id="b1",
        stop_id="s1",
        vehicle_id="bike-2",
    )
    await dispatch.control.apply(TEST_HUB, pin)
    await publisher.send(checked_in("b1", at("11:00"), at("11:05")), time=at("11:05"))
    await applied(dispatch, "dispatch-bookings", 2)
    assert dispatched.of_type("route_planned.v1") == []  # review: proposed, not published
    await dispatch.control.apply(TEST_HUB, Action(Kind.REPLAN, "operator:test-hub", "traffic"))
    await dispatch.control.apply(TEST_HUB, Action(Kind.RELEASE, "operator:test-hub", "ok"))
    routes = await dispatched.wait_count(1, suffix="route_planned.v1")
    await dispatched.wait_count(3, suffix="dispatcher_action.v1")
    on = {s["stop_id"]: r["data"]["vehicle_id"] for r in routes for s in r["data"]["stops"]}
    assert on["s1"] == "bike-2"
    actions = [e["data"] for e in dispatched.of_type("dispatcher_action.v1")]
    assert [(a["action"], a["by"]) for a in actions] == [
        ("pin", "operator:test-hub"),
        ("replan", "operator:test-hub"),
        ("release", "operator:test-hub"),
    ]
