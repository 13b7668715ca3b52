"""Hub closures over HTTP and the real Kafka round trip, on PostgreSQL and SQLite (issue
16): a hub's operator closes a range of slots; the carrier of a booking there is told,
with next slots, and moves it with one reschedule; requests into the range are rejected
``hub_closed`` with slots outside it; lifting the closure reopens the slots. Only that
hub's operators may close or reopen them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.integration.test_booking_http import auth, body, client, next_slot
from tests.support.carrier import TopicReader
from tests.support.hubs import TEST_HUB

__all__ = ["client"]  # the fixture

HOUR = timedelta(hours=1)
CLOSURES = f"/v1/hubs/{TEST_HUB}/closures"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def closure(start: datetime, end: datetime, reason: str = "dock door broken") -> dict[str, Any]:
    return {"from": start.isoformat(), "to": end.isoformat(), "reason": reason}


async def book(client: httpx.AsyncClient, reference: str, slot: datetime) -> dict[str, Any]:
    response = await client.post(
        "/v1/bookings?wait=10", json=body(reference, slot_start=slot.isoformat()),
        headers=auth("k-acme"),
    )  # fmt: skip
    assert response.status_code == 202, response.text
    return response.json()


async def test_an_operator_closes_slots_the_carrier_is_told_and_moves_its_booking(
    client: httpx.AsyncClient, outcomes: TopicReader
) -> None:
    start = next_slot()
    booked = await book(client, "in-closure", start + HOUR)
    assert booked["status"] == "confirmed"

    response = await client.post(
        f"{CLOSURES}?wait=10", json=closure(start, start + 2 * HOUR), headers=auth("k-op")
    )
    assert response.status_code == 202, response.text
    closed = response.json()
    assert closed["status"] == "closed" and closed["affected_bookings"] == 1
    assert closed["reason"] == "dock door broken" and closed["closed_by"]
    assert response.headers["location"] == closed["location"]

    # the carrier is told, with slots outside the closure to move to
    await outcomes.wait_for(lambda r: r.of_type("closure_affected.v1"), what="the notice")
    [notice] = outcomes.of_type("closure_affected.v1")
    data = notice["data"]
    assert data["booking_id"] == booked["booking_id"] and data["carrier_id"] == "acme"
    assert data["closure_id"] == closed["closure_id"] and data["reason"] == "dock door broken"
    assert data["next_slots"]
    assert all(utc(o["start"]) >= start + 2 * HOUR for o in data["next_slots"])
    [declared] = outcomes.of_type("hub_closure_declared.v1")
    assert declared["data"]["closed_by"] == closed["closed_by"]

    # the day's slot listing shows the closed slots as such, the others as before
    day = start.astimezone(ZoneInfo("Europe/Berlin")).date()
    listing = await client.get(f"/v1/hubs/{TEST_HUB}/slots?date={day}", headers=auth("k-acme"))
    assert listing.status_code == 200, listing.text
    by_start = {utc(s["start"]): s for s in listing.json()}
    for slot in (start, start + HOUR):
        assert by_start[slot]["closure_id"] == closed["closure_id"]
        assert by_start[slot]["closure_reason"] == "dock door broken"
        assert by_start[slot]["bookable"] is False
    after = by_start[start + 2 * HOUR]
    assert after["closure_id"] is None and after["bookable"] is True

    # a new request into the range: hub_closed, with slots outside it
    refused = await book(client, "into-closure", start)
    assert refused["status"] == "rejected"
    assert refused["booking"]["reason"] == "hub_closed"
    assert "dock door broken" in refused["booking"]["message"]
    assert all(utc(o["start"]) >= start + 2 * HOUR for o in refused["booking"]["next_slots"])

    # the carrier moves its booking with one command, to the first slot offered
    first = data["next_slots"][0]["start"]
    moved = await client.patch(
        f"/v1/bookings/{booked['booking_id']}?wait=10", json={"slot_start": first},
        headers=auth("k-acme"),
    )  # fmt: skip
    assert moved.status_code == 202 and moved.json()["status"] == "confirmed", moved.text
    assert utc(moved.json()["booking"]["slot_start"]) == utc(first)

    # lifted: the slots take bookings again
    lifted = await client.delete(
        f"{closed['location']}?wait=10&reason=door%20fixed", headers=auth("k-op")
    )
    assert lifted.status_code == 202, lifted.text
    assert lifted.json()["status"] == "lifted" and lifted.json()["lift_reason"] == "door fixed"
    assert (await book(client, "after-lift", start))["status"] == "confirmed"
    reopened = await client.get(f"/v1/hubs/{TEST_HUB}/slots?date={day}", headers=auth("k-acme"))
    assert all(s["closure_id"] is None for s in reopened.json())
    listed = (await client.get(CLOSURES, headers=auth("k-acme"))).json()
    assert [(c["closure_id"], c["status"]) for c in listed] == [(closed["closure_id"], "lifted")]


async def test_only_the_hubs_operators_close_and_reopen_its_slots(
    client: httpx.AsyncClient,
) -> None:
    start = next_slot()
    wanted = closure(start, start + HOUR, "holiday")
    assert (await client.post(CLOSURES, json=wanted)).status_code == 401
    for key in ("k-acme", "k-op-elsewhere", "k-official"):  # a carrier, another hub's operator
        response = await client.post(CLOSURES, json=wanted, headers=auth(key))
        assert response.status_code == 403, (key, response.text)
    assert (await client.get(CLOSURES, headers=auth("k-op"))).json() == []  # nothing closed

    for bad in (
        closure(start, start),  # empty
        closure(start + HOUR, start),  # backwards
        {"from": start.isoformat(), "to": (start + HOUR).isoformat()},  # no reason
        {**wanted, "from": "2027-03-02T09:00:00"},  # no offset
        {**wanted, "hub_id": "elsewhere"},  # not the contract
    ):
        response = await client.post(CLOSURES, json=bad, headers=auth("k-op"))
        assert response.status_code == 422, (bad, response.text)
    admin = await client.post("/v1/hubs/nowhere/closures", json=wanted, headers=auth("k-admin"))
    assert admin.status_code == 404

    made = await client.post(f"{CLOSURES}?wait=10", json=wanted, headers=auth("k-op"))
    assert made.status_code == 202 and made.json()["status"] == "closed"
    location = made.json()["location"]
    for key in ("k-acme", "k-op-elsewhere"):
        assert (await client.delete(location, headers=auth(key))).status_code == 403
    assert (await client.delete(f"{CLOSURES}/no-such", headers=auth("k-op"))).status_code == 404
    assert (await client.get(location, headers=auth("k-op"))).json()["status"] == "closed"
