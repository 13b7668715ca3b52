"""The booking HTTP API, for carriers without Kafka: through the real Kafka round trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from services.booking.service import BookingService
from services.gateway.service import GatewayService
from services.runtime.auth import ApiKeys
from services.runtime.http import create_app
from tests.support.carrier import consignment
from tests.support.hubs import TEST_HUB, hub_config

KEYS = {
    "k-acme": "carrier:acme",
    "k-other": "carrier:other",
    "k-ghost": "carrier:ghost",  # a key of a carrier not in the registry: no topics
    "k-op": f"operator:{TEST_HUB}",
    "k-op-elsewhere": "operator:elsewhere",
    "k-official": "official:testcity",
    "k-admin": "admin",
}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def client(
    booking: BookingService, gateway: GatewayService, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The API of ``booking``; its commands go through the carrier's topic and ``gateway``."""
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(
        yaml.safe_dump({"keys": [{"key": k, "scope": s} for k, s in KEYS.items()]})
    )
    app = create_app(keys=ApiKeys.load(keys_file), routers=booking.http_routers())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


def next_slot() -> datetime:
    # Tomorrow-ish at 10:00 Berlin: a grid slot of the test hub, in the future, in the horizon
    day = datetime.now(UTC) + timedelta(days=2)
    return day.replace(hour=9, minute=0, second=0, microsecond=0)  # 10:00/11:00 local


def body(reference: str, **kw) -> dict:
    return {
        "carrier_reference": reference,
        "hub_id": TEST_HUB,
        "slot_start": next_slot().isoformat(),
        "consignment": consignment(),
        **kw,
    }


async def test_requests_need_a_known_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/hubs")).status_code == 401
    response = await client.get("/v1/hubs", headers=auth("nope"))
    assert response.status_code == 401 and "unknown API key" in response.text
    assert (await client.get("/v1/hubs", headers={"X-API-Key": "k-acme"})).status_code == 200


async def test_carrier_books_reads_and_cancels_over_http(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/bookings?wait=10", json=body("web-1"), headers=auth("k-acme"))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "confirmed"
    assert response.headers["Location"] == accepted["location"]

    got = await client.get(accepted["location"], headers=auth("k-acme"))
    assert got.status_code == 200 and got.json()["carrier_reference"] == "web-1"

    slots = await client.get(
        f"/v1/hubs/{TEST_HUB}/slots",
        params={"date": next_slot().date().isoformat()},
        headers=auth("k-acme"),
    )
    [taken] = [s for s in slots.json() if datetime.fromisoformat(s["start"]) == next_slot()]
    assert taken["docks_free"] == taken["docks_total"] - 1
    assert taken["volume_free_m3"] == pytest.approx(taken["volume_total_m3"] - 2.0)

    cancelled = await client.delete(accepted["location"] + "?wait=10", headers=auth("k-acme"))
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    # DELETE is idempotent: a second one changes nothing and frees nothing twice
    again = await client.delete(accepted["location"] + "?wait=1", headers=auth("k-acme"))
    assert again.status_code == 202 and again.json()["status"] == "cancelled"
    slots = await client.get(
        f"/v1/hubs/{TEST_HUB}/slots",
        params={"date": next_slot().date().isoformat()},
        headers=auth("k-acme"),
    )
    [freed] = [s for s in slots.json() if datetime.fromisoformat(s["start"]) == next_slot()]
    assert freed["docks_free"] == freed["docks_total"]
    # a cancelled booking cannot be checked in
    assert (
        await client.post(accepted["location"] + "/check-in", headers=auth("k-acme"))
    ).status_code == 409


async def test_a_carrier_cannot_see_or_touch_another_carriers_booking(
    client: httpx.AsyncClient,
) -> None:
    accepted = (
        await client.post("/v1/bookings?wait=10", json=body("mine"), headers=auth("k-acme"))
    ).json()
    for method in ("GET", "DELETE"):
        response = await client.request(method, accepted["location"], headers=auth("k-other"))
        assert response.status_code == 404
        assert "mine" not in response.text
    listed = await client.get("/v1/bookings", headers=auth("k-other"))
    assert listed.status_code == 200 and listed.json() == []
    # booking in another carrier's name is refused outright
    forged = await client.post(
        "/v1/bookings", json=body("forged", carrier_id="acme"), headers=auth("k-other")
    )
    assert forged.status_code == 403
    # the hub's operator sees it, another hub's operator does not, an official may not list
    assert [
        b["carrier_reference"]
        for b in (await client.get("/v1/bookings", headers=auth("k-op"))).json()
    ] == ["mine"]
    assert (
        await client.get(accepted["location"], headers=auth("k-op-elsewhere"))
    ).status_code == 404
    assert (await client.get("/v1/bookings", headers=auth("k-official"))).status_code == 403


async def test_invalid_requests_get_clear_errors(client: httpx.AsyncClient) -> None:
    bad = body("bad")
    bad["consignment"]["parcel_count"] = 1000
    response = await client.post("/v1/bookings", json=bad, headers=auth("k-acme"))
    assert response.status_code == 422
    assert "parcel_count" in response.text
    naive = body("naive", slot_start="2030-01-01T10:00:00")
    assert (
        await client.post("/v1/bookings", json=naive, headers=auth("k-acme"))
    ).status_code == 422
    off_grid = body("off-grid", slot_start=(next_slot() + timedelta(minutes=7)).isoformat())
    decided = (
        await client.post("/v1/bookings?wait=10", json=off_grid, headers=auth("k-acme"))
    ).json()
    assert decided["status"] == "rejected"
    assert decided["booking"]["reason"] == "slot_not_on_grid"


async def test_admin_manages_hubs(client: httpx.AsyncClient) -> None:
    new_hub = hub_config(id="second-hub", docks_per_slot=1)
    assert (
        await client.put("/v1/admin/hubs/second-hub", json=new_hub, headers=auth("k-acme"))
    ).status_code == 403
    created = await client.put("/v1/admin/hubs/second-hub", json=new_hub, headers=auth("k-admin"))
    assert created.status_code == 200
    ids = [h["id"] for h in (await client.get("/v1/hubs", headers=auth("k-acme"))).json()]
    assert ids == ["second-hub", TEST_HUB]
    broken = hub_config(
        id="broken", city={"id": "x", "name": "X", "country": "DE", "timezone": "Mars/Olympus"}
    )
    response = await client.put("/v1/admin/hubs/broken", json=broken, headers=auth("k-admin"))
    assert response.status_code == 422 and "Mars/Olympus" in response.text
    assert (
        await client.delete("/v1/admin/hubs/second-hub", headers=auth("k-admin"))
    ).status_code == 204
    assert (
        await client.delete("/v1/admin/hubs/second-hub", headers=auth("k-admin"))
    ).status_code == 404


async def test_a_broker_failure_is_a_clear_503_and_nothing_is_booked(
    booking: BookingService, tmp_path: Path
) -> None:
    from services.booking import api

    async def broken(*_args) -> None:
        raise ConnectionError("no broker")

    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(yaml.safe_dump({"keys": [{"key": "k-acme", "scope": "carrier:acme"}]}))
    keys = ApiKeys.load(keys_file)
    router = api.router(units=booking.units, publish=broken, principal=keys.principal_dependency())
    app = create_app(keys=keys, routers=[lambda _principal: router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        response = await c.post("/v1/bookings", json=body("lost"), headers=auth("k-acme"))
        assert response.status_code == 503
        assert "retry" in response.json()["detail"] and response.headers["Retry-After"] == "5"
        assert (await c.get("/v1/bookings", headers=auth("k-acme"))).json() == []
