"""``POST /v2/bookings``: a booking with per-stop time windows and pickups for carriers
without Kafka, through the real Kafka round trip, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.test_booking_http import auth, client, next_slot
from tests.support.carrier import TopicReader, consignment
from tests.support.hubs import TEST_HUB

__all__ = ["client"]  # the fixture: commands go through the carrier's topic and the gateway


def body_v2(reference: str, *, opens: timedelta, closes: timedelta, **kw: Any) -> dict:
    slot: datetime = next_slot()
    document = consignment()
    document["stops"][0]["kind"] = "pickup"
    document["stops"][-1]["window"] = {
        "start": (slot + opens).isoformat(),
        "end": (slot + closes).isoformat(),
    }
    return {
        "carrier_reference": reference,
        "hub_id": TEST_HUB,
        "slot_start": slot.isoformat(),
        "consignment": document,
        **kw,
    }


async def test_a_carrier_books_windows_and_a_pickup_over_http(
    client: httpx.AsyncClient, outcomes: TopicReader
) -> None:
    sent = body_v2("web-v2", opens=timedelta(hours=1), closes=timedelta(hours=3))
    response = await client.post("/v2/bookings?wait=10", json=sent, headers=auth("k-acme"))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "confirmed"
    assert response.headers["Location"] == accepted["location"]
    got = await client.get(accepted["location"], headers=auth("k-acme"))
    assert got.status_code == 200 and got.json()["carrier_reference"] == "web-v2"
    # the stops' terms follow the confirmation on booking's events, for dispatch
    terms_type = "microhub.booking.stop_terms.v1"
    await outcomes.wait_for(
        lambda r: any(e["type"] == terms_type for e in r.events), what="the stop terms"
    )
    [terms] = [e["data"] for e in outcomes.events if e["type"] == terms_type]
    stops = {t["stop_id"]: t for t in terms["stops"]}
    first, last = sent["consignment"]["stops"][0], sent["consignment"]["stops"][-1]
    assert stops[first["stop_id"]]["kind"] == "pickup"
    window = stops[last["stop_id"]]["window"]
    assert datetime.fromisoformat(window["end"]) == datetime.fromisoformat(last["window"]["end"])
    # the same request again is the same booking; another under its reference is a 409
    again = await client.post("/v2/bookings?wait=10", json=sent, headers=auth("k-acme"))
    assert again.status_code == 202 and again.json()["booking_id"] == accepted["booking_id"]
    other = dict(sent, consignment={**sent["consignment"], "weight_kg": 99.0})
    clash = await client.post("/v2/bookings", json=other, headers=auth("k-acme"))
    assert clash.status_code == 409 and clash.json()["detail"]["reason"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("opens", "closes", "reason"),
    [
        (timedelta(hours=3), timedelta(hours=1), "window_backwards"),
        (timedelta(hours=-3), timedelta(hours=0), "window_before_slot"),
    ],
)
async def test_a_window_that_cannot_be_kept_is_a_422_with_the_reason(
    client: httpx.AsyncClient, opens: timedelta, closes: timedelta, reason: str
) -> None:
    sent = body_v2("bad-window", opens=opens, closes=closes)
    response = await client.post("/v2/bookings?wait=2", json=sent, headers=auth("k-acme"))
    assert response.status_code == 422, response.text
    assert response.json()["detail"]["reason"] == reason
    assert repr(sent["consignment"]["stops"][-1]["stop_id"]) in response.json()["detail"]["message"]
    # nothing was sent: no booking under that reference
    listed = await client.get("/v1/bookings", headers=auth("k-acme"))
    assert "bad-window" not in [b["carrier_reference"] for b in listed.json()]


async def test_v2_keeps_the_v1_rules_and_keys(client: httpx.AsyncClient) -> None:
    window = {"opens": timedelta(hours=1), "closes": timedelta(hours=2)}
    mismatch = body_v2("mismatch", **window)
    mismatch["consignment"]["parcel_count"] = 999
    response = await client.post("/v2/bookings", json=mismatch, headers=auth("k-acme"))
    assert response.status_code == 422
    assert response.json()["detail"]["reason"] == "parcel_count_mismatch"
    for_other = body_v2("theirs", carrier_id="other", **window)
    assert (
        await client.post("/v2/bookings", json=for_other, headers=auth("k-acme"))
    ).status_code == 403
    operator = await client.post("/v2/bookings", json=body_v2("op", **window), headers=auth("k-op"))
    assert operator.status_code == 403
    admin = await client.post(
        "/v2/bookings", json=body_v2("adm", **window), headers=auth("k-admin")
    )
    assert admin.status_code == 422 and "carrier_id" in admin.text
    loose = body_v2("loose", **window)
    loose["consignment"]["stops"][0]["kind"] = "teleport"
    assert (
        await client.post("/v2/bookings", json=loose, headers=auth("k-acme"))
    ).status_code == 422
