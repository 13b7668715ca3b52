"""The dispatch queue over HTTP: snapshot, the SSE stream a live client follows, the
terminal view, fleet administration and who may see what. A real uvicorn server on a
free port (httpx's ASGI transport buffers whole responses, so it cannot stream)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from rich.console import Console
from rich.live import Live

from contracts.envelope import new_event
from services.dispatch import api
from services.dispatch.cli import render_queue, sse_events, watch_queue
from services.dispatch.service import DispatchService
from services.runtime.auth import Principal, Role
from services.runtime.settings import Settings
from tests.support.dispatch import bike, confirmed, consignment, write_fleet
from tests.support.hubs import TEST_HUB
from tests.support.waiting import eventually

# tomorrow 06:00 UTC: a test's events stay within one day at the test hub whatever the
# hour (see test_dispatch_over_kafka.py)
NOW = (datetime.now(UTC) + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
OPERATOR = {"X-Test-Principal": f"operator:{TEST_HUB}"}
ADMIN = {"X-Test-Principal": "admin"}


async def stand_in_principal(request: Request) -> Principal:
    """The platform's Principal, from a `role:scope` header (no key file needed)."""
    raw = request.headers.get("x-test-principal") or request.headers.get("authorization", "")
    raw = raw.removeprefix("Bearer ")
    if not raw:
        raise HTTPException(401, "no principal")
    role, _, scope = raw.partition(":")
    return Principal(Role(role), scope or None, name=raw)


@pytest.fixture
async def dispatch(
    settings: Settings, database_url: str, tmp_path: Path
) -> AsyncIterator[DispatchService]:
    config = settings.model_copy(
        update={
            "fleet_file": write_fleet(tmp_path / "fleet.yaml"),
            "dispatch_solver_in_subprocess": False,
        }
    )
    service = DispatchService(config, config.bootstrap_list(), database_url=database_url)
    await service.migrate()  # the HTTP side needs no broker
    await service.load_fleet()
    yield service
    await service.changes.stop()
    await service.engine.dispose()


@pytest.fixture
async def base_url(dispatch: DispatchService) -> AsyncIterator[str]:
    app = FastAPI()
    app.include_router(api.router(dispatch.queues, stand_in_principal, control=dispatch.control))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def confirm_booking(dispatch: DispatchService, booking_id: str, stops: int) -> None:
    """Through the consumer's handler and transaction, as a record from Kafka would be."""
    event = new_event(
        confirmed(booking_id, NOW + timedelta(hours=1), consignment(stops)),
        source="microhub/booking",
        subject=TEST_HUB,
        time=NOW,
    )
    await dispatch.handle(event)


async def test_the_stream_delivers_a_change_to_a_connected_client(
    dispatch: DispatchService, base_url: str
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=15)) as client:
        async with client.stream(
            "GET", f"/v1/hubs/{TEST_HUB}/dispatch/stream", headers=OPERATOR
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            events = sse_events(r)
            first = await anext(events)
            assert first.event == "snapshot"
            assert [v["vehicle_id"] for v in json.loads(first.data)["vehicles"]] == [
                "bike-1",
                "bike-2",
            ]

            await confirm_booking(dispatch, "b1", 3)
            change = await asyncio.wait_for(anext(events), 10)
            assert change.event == "change"
            document = json.loads(change.data)
            assert document["changes"][0]["kind"] == "stops_expected"
            assert [s["status"] for s in document["snapshot"]["stops"]] == ["expected"] * 3

            # an admin change to the fleet reaches the viewer too
            put = await client.put(
                f"/v1/hubs/{TEST_HUB}/fleet/trike-1",
                headers=ADMIN,
                json=bike("trike-1", type="e_trike"),
            )
            assert put.status_code == 200, put.text
            change = await asyncio.wait_for(anext(events), 10)
            assert json.loads(change.data)["changes"] == [
                {"kind": "fleet", "vehicle_id": "trike-1", "action": "put"}
            ]
    # the server notices the closed connection shortly after
    await eventually(
        lambda: dispatch.changes.subscribers(TEST_HUB) == 0,
        what="the stream to unsubscribe when its client left",
        timeout=5,
    )


async def test_snapshot_and_who_may_see_it(dispatch: DispatchService, base_url: str) -> None:
    await confirm_booking(dispatch, "b2", 2)
    async with httpx.AsyncClient(base_url=base_url) as client:
        snap = await client.get(f"/v1/hubs/{TEST_HUB}/dispatch", headers=OPERATOR)
        assert snap.status_code == 200
        body = snap.json()
        assert body["hub"]["city_id"] == "testcity"
        assert {s["stop_id"] for s in body["stops"]} == {"s0", "s1"}
        assert all(v["free"] for v in body["vehicles"])
        assert (await client.get(f"/v1/hubs/{TEST_HUB}/dispatch", headers=ADMIN)).status_code == 200
        for who in ("operator:other-hub", "carrier:acme", "official:testcity"):
            denied = await client.get(
                f"/v1/hubs/{TEST_HUB}/dispatch", headers={"X-Test-Principal": who}
            )
            assert denied.status_code == 403, who
            stream = await client.get(
                f"/v1/hubs/{TEST_HUB}/dispatch/stream", headers={"X-Test-Principal": who}
            )
            assert stream.status_code == 403, who
        missing = await client.get("/v1/hubs/nowhere/dispatch", headers=ADMIN)
        assert missing.status_code == 404 and "nowhere" in missing.json()["detail"]


async def test_fleet_administration(dispatch: DispatchService, base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        url = f"/v1/hubs/{TEST_HUB}/fleet"
        assert (
            await client.put(f"{url}/van-1", headers=OPERATOR, json=bike("van-1"))
        ).status_code == 403
        wrong = await client.put(f"{url}/van-1", headers=ADMIN, json=bike("van-2"))
        assert wrong.status_code == 422 and "van-2" in wrong.json()["detail"]
        invalid = await client.put(f"{url}/van-1", headers=ADMIN, json=bike("van-1", range_km=-5))
        assert invalid.status_code == 422
        ok = await client.put(
            f"{url}/van-1",
            headers=ADMIN,
            json=bike("van-1", type="e_van", capacity={"parcels": 200, "kg": 900, "m3": 11}),
        )
        assert ok.status_code == 200
        fleet = (await client.get(url, headers=OPERATOR)).json()
        assert [v["id"] for v in fleet] == ["bike-1", "bike-2", "van-1"]
        assert fleet[2]["capacity"]["kg"] == 900 and fleet[2]["status"] == "available"
        elsewhere = await client.put(
            "/v1/hubs/other-hub/fleet/van-1", headers=ADMIN, json=bike("van-1")
        )
        assert elsewhere.status_code == 409
        assert (await client.delete(f"{url}/van-1", headers=ADMIN)).status_code == 204
        assert (await client.delete(f"{url}/van-1", headers=ADMIN)).status_code == 404
        assert [v["id"] for v in (await client.get(url, headers=ADMIN)).json()] == [
            "bike-1",
            "bike-2",
        ]


async def test_the_terminal_view_follows_the_stream(
    dispatch: DispatchService, base_url: str
) -> None:
    await confirm_booking(dispatch, "b3", 2)
    console = Console(record=True, width=140, force_terminal=False)
    live = Live(console=console, auto_refresh=False)
    watcher = asyncio.create_task(
        watch_queue(base_url, TEST_HUB, f"operator:{TEST_HUB}", stop_after=2, live=live)
    )
    await eventually(
        lambda: dispatch.changes.subscribers(TEST_HUB) > 0, what="the terminal view to connect"
    )
    await confirm_booking(dispatch, "b4", 1)
    assert await asyncio.wait_for(watcher, 15) == 2
    text = console.export_text()
    assert "bike-1" in text and "expected 3 stops" in text  # the change after b4 was drawn

    rendered = Console(record=True, width=140)
    rendered.print(render_queue(await dispatch.queues.snapshot(TEST_HUB)))
    out = rendered.export_text()
    assert "test-hub" in out and "Vehicles" in out and "bike-2" in out
    assert "expected 3 stops" in out

    with pytest.raises(RuntimeError, match="403"):
        await watch_queue(base_url, TEST_HUB, "carrier:acme", stop_after=1)


async def test_a_dispatcher_acts_on_the_hub_it_operates_only(
    dispatch: DispatchService, base_url: str
) -> None:
    await confirm_booking(dispatch, "b1", 2)
    hold = {"action": "hold", "reason": "address unclear", "booking_id": "b1", "stop_id": "s0"}
    url = f"/v1/hubs/{TEST_HUB}/dispatch/actions"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        other = {"X-Test-Principal": "operator:another-hub"}
        assert (await client.post(url, json=hold, headers=other)).status_code == 403
        answer = await client.post(url, json=hold, headers=OPERATOR)
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["action"]["by"] == f"operator:{TEST_HUB}"
        assert document["action"]["reason"] == "address unclear"
        held = [s for s in document["snapshot"]["stops"] if s["stop_id"] == "s0"]
        assert held[0]["status"] == "held"
        again = await client.post(url, json=hold, headers=OPERATOR)
        assert again.status_code == 409 and "held" in again.json()["detail"]
        unknown = {**hold, "booking_id": "nope"}
        assert (await client.post(url, json=unknown, headers=OPERATOR)).status_code == 404
        no_reason = {k: v for k, v in hold.items() if k != "reason"}
        assert (await client.post(url, json=no_reason, headers=OPERATOR)).status_code == 422
