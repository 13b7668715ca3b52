"""The waiting list over HTTP, for carriers without Kafka: a v2 request that asks to wait
on a full slot is waitlisted, offered the dock a cancellation frees, and accepts it —
through the carrier's own topic and the gateway, like every HTTP command."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.integration.test_booking_http import auth, body, client
from tests.integration.test_booking_http_v2 import body_v2
from tests.support.waiting import eventually

__all__ = ["client"]  # the fixture


async def status_of(client: httpx.AsyncClient, booking_id: str) -> str:
    response = await client.get(f"/v1/bookings/{booking_id}", headers=auth("k-acme"))
    assert response.status_code == 200, response.text
    return response.json()["status"]


async def test_a_request_waits_is_offered_a_freed_dock_and_takes_it(
    client: httpx.AsyncClient,
) -> None:
    booked = []
    for reference in ("full-1", "full-2"):  # the test hub's slot has two docks
        response = await client.post(
            "/v1/bookings?wait=10", json=body(reference), headers=auth("k-acme")
        )
        assert response.json()["status"] == "confirmed", response.text
        booked.append(response.json()["booking_id"])

    waiting = body_v2("waits", opens=timedelta(hours=1), closes=timedelta(hours=3), wait=True)
    response = await client.post("/v2/bookings?wait=10", json=waiting, headers=auth("k-acme"))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "waitlisted"
    waits = response.json()["booking_id"]

    # nothing offered yet: there is nothing to accept
    early = await client.post(f"/v1/bookings/{waits}/offer/accept?wait=10", headers=auth("k-acme"))
    assert early.status_code == 409, early.text
    assert early.json()["detail"]["reason"] == "no_offer"
    # another carrier does not see it; the hub's operator may not answer for the carrier
    other = await client.post(f"/v1/bookings/{waits}/offer/accept", headers=auth("k-other"))
    assert other.status_code == 404
    operator = await client.post(f"/v1/bookings/{waits}/offer/accept", headers=auth("k-op"))
    assert operator.status_code == 403

    cancelled = await client.delete(f"/v1/bookings/{booked[0]}?wait=10", headers=auth("k-acme"))
    assert cancelled.json()["status"] == "cancelled", cancelled.text
    await eventually(lambda: _is(client, waits, "offered"), what="the offer", timeout=20)

    taken = await client.post(f"/v1/bookings/{waits}/offer/accept?wait=10", headers=auth("k-acme"))
    assert taken.status_code == 202, taken.text
    assert taken.json()["status"] == "confirmed"
    assert await status_of(client, waits) == "confirmed"


async def _is(client: httpx.AsyncClient, booking_id: str, wanted: str) -> bool:
    return await status_of(client, booking_id) == wanted
