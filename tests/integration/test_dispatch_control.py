"""A dispatcher in control, on a real database: a hub in review mode proposes its waves;
the dispatcher holds a stop, pins stops to vehicles, moves a stop between proposed
routes, re-plans (the pins hold), and releases the wave; every action is a
``DispatcherAction`` event with who and why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from contracts.dispatch import DispatcherActionKind as Kind
from contracts.envelope import Payload, decode, new_event
from services.dispatch import store
from services.dispatch.control import Action, NotFound, Refused
from services.dispatch.domain import RouteStatus, StopStatus
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
    path = write_fleet(tmp_path / "fleet.yaml", bike("bike-1"), bike("bike-2"))
    document = yaml.safe_load(path.read_text())
    document["hubs"][0]["waves"] = {"release": "review", "min_stops": 2}
    path.write_text(yaml.safe_dump(document))
    config = settings.model_copy(
        update={
            "fleet_file": path,
            "dispatch_solver_time_limit_seconds": 5,
            "dispatch_solver_iterations": 200,
            "dispatch_solver_in_subprocess": False,
        }
    )
    service = DispatchService(config, config.bootstrap_list(), database_url=database_url)
    await service.migrate()
    await service.load_fleet()
    # the dispatcher acts at the hub's event time (the simulated day), not the wall clock
    service.control.clock = lambda: T0
    yield service
    await service.engine.dispose()


async def apply(dispatch: DispatchService, payload: Payload, at: datetime) -> None:
    await dispatch.handle(new_event(payload, source="test", subject=TEST_HUB, time=at))


async def published(dispatch: DispatchService, suffix: str) -> list[Any]:
    async with dispatch.sessions() as session:
        rows = await session.execute(
            select(store.outbox.c.payload)
            .where(store.outbox.c.event_type == f"microhub.dispatch.{suffix}")
            .order_by(store.outbox.c.id)
        )
        return [decode(bytes(r[0])).data for r in rows]


def act(kind: Kind, why: str, **refs: str) -> Action:
    return Action(kind=kind, by="operator ber-test", reason=why, **refs)


async def routes_now(dispatch: DispatchService) -> dict[str, list[str]]:
    """vehicle -> its proposed/planned route's stop ids"""
    async with dispatch.sessions() as session:
        routes = await store.routes_of_hub(
            session, TEST_HUB, (RouteStatus.PROPOSED, RouteStatus.PLANNED)
        )
        return {
            r.vehicle_id: sorted(s.stop_id for s in await store.stops_of_route(session, r.id))
            for r in routes
        }


async def test_review_pin_hold_move_replan_release(dispatch: DispatchService) -> None:
    await apply(dispatch, confirmed("b1", SLOT, consignment(3)), T0)
    control = dispatch.control
    await control.apply(TEST_HUB, act(Kind.HOLD, "address unclear", booking_id="b1", stop_id="s1"))
    await control.apply(
        TEST_HUB,
        act(Kind.PIN, "bulky: the trike", booking_id="b1", stop_id="s0", vehicle_id="bike-1"),
    )
    await control.apply(
        TEST_HUB, act(Kind.PIN, "regular", booking_id="b1", stop_id="s2", vehicle_id="bike-2")
    )
    await apply(dispatch, checked_in("b1", SLOT, SLOT), SLOT)  # s0, s2 wait: the fill of 2

    # review: the wave is proposed, nothing goes out yet; the pins decided the vehicles
    assert await routes_now(dispatch) == {"bike-1": ["s0"], "bike-2": ["s2"]}
    assert await published(dispatch, "route_planned.v1") == []
    assert await published(dispatch, "stop_updated.v1") == []
    async with dispatch.sessions() as session:
        held = await store.get_stop(session, "b1", "s1")
    assert held is not None and held.status is StopStatus.HELD

    # moving a pinned stop is refused; unpinned, it moves, and the emptied route is gone
    bike2 = f"{TEST_HUB}:w00001:bike-2"
    with pytest.raises(Refused, match="pinned"):
        await control.apply(
            TEST_HUB, act(Kind.MOVE, "one trip", booking_id="b1", stop_id="s0", route_id=bike2)
        )
    await control.apply(TEST_HUB, act(Kind.UNPIN, "fine either way", booking_id="b1", stop_id="s0"))
    await control.apply(
        TEST_HUB, act(Kind.MOVE, "one trip", booking_id="b1", stop_id="s0", route_id=bike2)
    )
    assert await routes_now(dispatch) == {"bike-2": ["s0", "s2"]}
    async with dispatch.sessions() as session:
        route = await store.get_route(session, bike2)
    assert route is not None and [s["stop_id"] for s in route.planned["stops"]].count("s0") == 1
    assert route.planned["load_parcels"] == 4

    # re-plan: the proposal is planned anew; s2's pin to bike-2 holds
    await control.apply(
        TEST_HUB, act(Kind.PIN, "fragile", booking_id="b1", stop_id="s0", vehicle_id="bike-1")
    )
    await control.apply(TEST_HUB, act(Kind.REPLAN, "pins changed"))
    assert await routes_now(dispatch) == {"bike-1": ["s0"], "bike-2": ["s2"]}

    # release: the routes and each stop's planned ETA go out
    released = await control.apply(TEST_HUB, act(Kind.RELEASE, "looks good"))
    assert len(released.routes) == 2
    planned = await published(dispatch, "route_planned.v1")
    assert sorted(r.vehicle_id for r in planned) == ["bike-1", "bike-2"]
    assert {u.status.value for u in await published(dispatch, "stop_updated.v1")} == {"planned"}
    with pytest.raises(Refused, match="no proposed routes"):
        await control.apply(TEST_HUB, act(Kind.RELEASE, "again"))

    # the held stop comes back as a new stop
    await control.apply(TEST_HUB, act(Kind.UNHOLD, "address found", booking_id="b1", stop_id="s1"))
    async with dispatch.sessions() as session:
        back = await store.get_stop(session, "b1", "s1")
    assert back is not None and back.status is StopStatus.WAITING
    assert back.queued_at is not None and back.queued_at >= SLOT

    actions = await published(dispatch, "dispatcher_action.v1")
    assert [a.action.value for a in actions] == [
        "hold",
        "pin",
        "pin",
        "unpin",
        "move",
        "pin",
        "replan",
        "release",
        "unhold",
    ]
    assert all(a.by == "operator ber-test" and a.reason for a in actions)
    with pytest.raises(NotFound):
        await control.apply(TEST_HUB, act(Kind.HOLD, "?", booking_id="b9", stop_id="s0"))
