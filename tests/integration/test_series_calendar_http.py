"""Standing bookings and calendar feeds over HTTP (issue 16), through the real Kafka
round trip: ``POST``/``GET``/``DELETE /v1/series``; calendar tokens created and revoked
with an API key, and ``GET /v1/calendars/{token}.ics`` showing exactly the token's
carrier's (or hub's) bookings, parsed with the icalendar library."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
from icalendar import Calendar

from services.booking.domain import booking_id_for
from tests.integration.test_booking_http import auth, body, client, next_slot

__all__ = ["client"]  # the fixture

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)


def series_body(reference: str, rule: str = "FREQ=DAILY;COUNT=3", **kw) -> dict:
    first = next_slot().astimezone(BERLIN).replace(tzinfo=None)
    return {
        "carrier_reference": reference,
        "hub_id": body("x")["hub_id"],
        "rrule": rule,
        "dtstart": first.isoformat(),
        "consignment": body("x")["consignment"],
        **kw,
    }


async def test_a_carrier_books_reads_and_ends_a_series_over_http(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/series?wait=10", json=series_body("web-series"), headers=auth("k-acme")
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "active" and response.headers["Location"] == created["location"]
    kinds = sorted(e["type"].split(".")[2] for e in created["answer"])
    assert kinds == ["confirmed"] * 3 + ["series_accepted"]
    [accepted] = [e["data"] for e in created["answer"] if e["type"].endswith("series_accepted.v1")]
    assert [o["slot_start"] for o in accepted["occurrences"]] == [
        (next_slot() + timedelta(days=d)).isoformat().replace("+00:00", "Z") for d in range(3)
    ]
    # an occurrence is a booking like any other
    first = accepted["occurrences"][0]["booking_id"]
    got = await client.get(f"/v1/bookings/{first}", headers=auth("k-acme"))
    assert got.status_code == 200 and got.json()["status"] == "confirmed"

    assert (await client.get(created["location"], headers=auth("k-acme"))).status_code == 200
    assert (await client.get(created["location"], headers=auth("k-other"))).status_code == 404
    assert (await client.get(created["location"], headers=auth("k-op"))).status_code == 200
    assert (await client.delete(created["location"], headers=auth("k-op"))).status_code == 403

    ended = await client.delete(created["location"] + "?wait=10", headers=auth("k-acme"))
    assert ended.status_code == 202, ended.text
    assert ended.json()["status"] == "cancelled"
    [summary] = [e["data"] for e in ended.json()["answer"] if "series_cancelled" in e["type"]]
    assert summary["cancelled"] == [o["booking_id"] for o in accepted["occurrences"]]
    got = await client.get(f"/v1/bookings/{first}", headers=auth("k-acme"))
    assert got.json()["status"] == "cancelled"


async def test_series_refusals_over_http(client: httpx.AsyncClient) -> None:
    for rule, reason in (
        ("FREQ=HOURLY", "rrule_too_frequent"),
        ("FREQ=DAILY;X=1", "invalid_rrule"),
    ):
        response = await client.post(
            "/v1/series", json=series_body("web-bad", rule), headers=auth("k-acme")
        )
        assert response.status_code == 422 and response.json()["detail"]["reason"] == reason
    for bad in (
        series_body("web-bad", dtstart="2027-03-01T07:00:00+01:00"),  # a wall time: no offset
        series_body("web:bad"),  # ':' separates an occurrence's date
        {**series_body("web-bad"), "extra": 1},
    ):
        response = await client.post("/v1/series", json=bad, headers=auth("k-acme"))
        assert response.status_code == 422, bad
    nowhere = await client.post(
        "/v1/series?wait=10", json=series_body("web-bad", hub_id="atlantis"), headers=auth("k-acme")
    )
    assert nowhere.status_code == 422 and nowhere.json()["detail"]["reason"] == "unknown_hub"
    assert (
        await client.post("/v1/series", json=series_body("web-x"), headers=auth("k-op"))
    ).status_code == 403
    assert (await client.delete("/v1/series/nope", headers=auth("k-acme"))).status_code == 404


def parsed(response: httpx.Response) -> dict[str, dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    return {str(e["uid"]): e for e in calendar.walk("VEVENT")}


async def book(client: httpx.AsyncClient, key: str, reference: str, slot) -> str:
    response = await client.post(
        "/v1/bookings?wait=10",
        json=body(reference, slot_start=slot.isoformat()),
        headers=auth(key),
    )
    assert response.json()["status"] == "confirmed", response.text
    return response.json()["booking_id"]


async def test_a_calendar_feed_shows_exactly_its_tokens_bookings(client: httpx.AsyncClient) -> None:
    mine = [await book(client, "k-acme", f"cal-{i}", next_slot() + i * HOUR) for i in range(2)]
    theirs = await book(client, "k-other", "cal-x", next_slot() + 3 * HOUR)

    made = await client.post("/v1/calendar-tokens", json={"label": "dispo"}, headers=auth("k-acme"))
    assert made.status_code == 201, made.text
    token = made.json()
    assert token["role"] == "carrier" and token["scope"] == "acme"
    events = parsed(await client.get(token["url"]))
    assert set(events) == {f"{b}@microhub" for b in mine}  # not the other carrier's
    first = events[f"{mine[0]}@microhub"]
    assert str(first["status"]) == "CONFIRMED" and int(first["sequence"]) == 0
    assert first.decoded("dtstart") == next_slot()

    # cancelled: same UID, a higher SEQUENCE, STATUS:CANCELLED
    await client.delete(f"/v1/bookings/{mine[0]}?wait=10", headers=auth("k-acme"))
    events = parsed(await client.get(token["url"]))
    assert str(events[f"{mine[0]}@microhub"]["status"]) == "CANCELLED"
    assert int(events[f"{mine[0]}@microhub"]["sequence"]) == 1

    # the hub's operator sees the hub's bookings, every carrier's; and a hub's day
    hub = await client.post("/v1/calendar-tokens", json={}, headers=auth("k-op"))
    assert hub.json()["role"] == "operator"
    hub_events = parsed(await client.get(hub.json()["url"]))
    assert {f"{b}@microhub" for b in [*mine, theirs]} <= set(hub_events)
    local_day = next_slot().astimezone(BERLIN).date().isoformat()
    day_events = parsed(await client.get(hub.json()["url"], params={"date": local_day}))
    assert {f"{b}@microhub" for b in [*mine, theirs]} <= set(day_events)
    other_day = (next_slot() + timedelta(days=1)).astimezone(BERLIN).date().isoformat()
    assert not {f"{b}@microhub" for b in mine} & set(
        parsed(await client.get(hub.json()["url"], params={"date": other_day}))
    )

    # listed without the token; revoked only by its owner; then 404, like an unknown one
    listed = (await client.get("/v1/calendar-tokens", headers=auth("k-acme"))).json()
    assert [t["id"] for t in listed] == [token["id"]] and "token" not in listed[0]
    path = f"/v1/calendar-tokens/{token['id']}"
    assert (await client.delete(path, headers=auth("k-other"))).status_code == 404
    assert (await client.delete(path, headers=auth("k-acme"))).status_code == 204
    revoked = await client.get(token["url"])
    unknown = await client.get("/v1/calendars/" + "x" * 43 + ".ics")
    assert revoked.status_code == unknown.status_code == 404
    assert revoked.json() == unknown.json()
    assert (await client.get(hub.json()["url"])).status_code == 200  # the others stay
    assert booking_id_for("acme", "cal-1") == mine[1]


async def test_who_may_create_which_feed(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/calendar-tokens", json={})).status_code == 401
    official = await client.post("/v1/calendar-tokens", json={}, headers=auth("k-official"))
    assert official.status_code == 403
    other = await client.post(
        "/v1/calendar-tokens", json={"carrier_id": "other"}, headers=auth("k-acme")
    )
    assert other.status_code == 403
    elsewhere = await client.post(
        "/v1/calendar-tokens", json={"hub_id": "elsewhere"}, headers=auth("k-op")
    )
    assert elsewhere.status_code == 403
    admin = await client.post("/v1/calendar-tokens", json={}, headers=auth("k-admin"))
    assert admin.status_code == 422
    admin = await client.post(
        "/v1/calendar-tokens", json={"carrier_id": "other"}, headers=auth("k-admin")
    )
    assert admin.status_code == 201 and admin.json()["scope"] == "other"
