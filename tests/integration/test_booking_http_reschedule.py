"""``PATCH /v1/bookings/{id}``: a carrier moves its booking to another slot over HTTP,
through the real Kafka round trip (issue 16)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.integration.test_booking_http import auth, body, client, next_slot

__all__ = ["client"]  # the fixture

HOUR = timedelta(hours=1)


async def book(client: httpx.AsyncClient, reference: str, **kw) -> str:
    response = await client.post(
        "/v1/bookings?wait=10", json=body(reference, **kw), headers=auth("k-acme")
    )
    assert response.status_code == 202 and response.json()["status"] == "confirmed", response.text
    return response.json()["booking_id"]


async def patch(client: httpx.AsyncClient, booking_id: str, json: object, key: str = "k-acme"):
    return await client.patch(f"/v1/bookings/{booking_id}?wait=10", json=json, headers=auth(key))


async def test_a_carrier_moves_its_booking_over_http(client: httpx.AsyncClient) -> None:
    booking_id = await book(client, "web-move")
    new = next_slot() + 2 * HOUR
    response = await patch(client, booking_id, {"slot_start": new.isoformat(), "reason": "later"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "confirmed"
    assert accepted["booking"]["slot_start"] == new.isoformat().replace("+00:00", "Z")
    got = (await client.get(accepted["location"], headers=auth("k-acme"))).json()
    assert got["slot_start"] == accepted["booking"]["slot_start"]
    # to the slot it has now: confirmed, nothing changes
    again = await patch(client, booking_id, {"slot_start": new.isoformat()})
    assert again.status_code == 202 and again.json()["booking"]["slot_start"] == got["slot_start"]


async def test_a_move_to_a_full_slot_is_a_409_with_offers_and_the_booking_stays(
    client: httpx.AsyncClient,
) -> None:
    full = next_slot() + HOUR
    for reference in ("web-a", "web-b"):  # two docks per slot
        await book(client, reference, slot_start=full.isoformat())
    booking_id = await book(client, "web-stay")
    response = await patch(client, booking_id, {"slot_start": full.isoformat()})
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert detail["reason"] == "slot_docks_full" and detail["next_slots"]
    kept = (await client.get(f"/v1/bookings/{booking_id}", headers=auth("k-acme"))).json()
    assert kept["slot_start"] == next_slot().isoformat().replace("+00:00", "Z")


async def test_who_may_move_what(client: httpx.AsyncClient) -> None:
    booking_id = await book(client, "web-guard")
    new = {"slot_start": (next_slot() + 3 * HOUR).isoformat()}
    assert (await client.patch(f"/v1/bookings/{booking_id}", json=new)).status_code == 401
    assert (await patch(client, booking_id, new, key="k-other")).status_code == 404
    assert (await patch(client, booking_id, new, key="k-op")).status_code == 403
    assert (await patch(client, "no-such-booking", new)).status_code == 404
    for bad in ({}, {"slot_start": "tomorrow"}, {"slot_start": "2027-03-02T09:00:00"},
                {**new, "hub_id": "elsewhere"}):  # fmt: skip
        assert (await patch(client, booking_id, bad)).status_code == 422, bad
    far = {"slot_start": (next_slot() + timedelta(days=400)).isoformat()}
    response = await patch(client, booking_id, far)
    assert response.status_code == 422 and response.json()["detail"]["reason"] == (
        "slot_beyond_horizon"
    )
    cancelled = await client.delete(f"/v1/bookings/{booking_id}?wait=10", headers=auth("k-acme"))
    assert cancelled.json()["status"] == "cancelled"
    response = await patch(client, booking_id, new)
    assert response.status_code == 409
    assert response.json()["detail"]["reason"] == "booking_not_confirmed"
