"""The booking HTTP API answers every request with a status that says what happened
(issue 12): no 500 for input it cannot take, no old outcome for a new request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from services.booking.service import BookingService
from services.gateway.service import GatewayService
from services.runtime.auth import ApiKeys
from services.runtime.http import create_app
from tests.integration.test_booking_http import auth, body, next_slot

LIMIT = 64 * 1024


@pytest.fixture
async def client(
    booking: BookingService, gateway: GatewayService, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The API of ``booking``; its commands go through the carrier's topic and ``gateway``."""
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(yaml.safe_dump({"keys": [{"key": "k-acme", "scope": "carrier:acme"}]}))
    app = create_app(
        keys=ApiKeys.load(keys_file), routers=booking.http_routers(), max_body_bytes=LIMIT
    )
    # a 500 is an answer here, not an exception in the test
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_a_422(client: httpx.AsyncClient, literal: str) -> None:
    text = httpx.Request("POST", "/", json=body("nan")).content.decode()
    text = text.replace('"weight_kg":30.0', f'"weight_kg":{literal}')
    assert literal in text
    response = await client.post(
        "/v1/bookings",
        content=text,
        headers={**auth("k-acme"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "weight_kg" in response.text or "JSON" in response.text


async def test_a_string_where_the_schema_says_integer_is_a_422(client: httpx.AsyncClient) -> None:
    stringly = body("stringly")
    stringly["consignment"]["parcel_count"] = "4"
    response = await client.post("/v1/bookings", json=stringly, headers=auth("k-acme"))
    assert response.status_code == 422, response.text
    assert "parcel_count" in response.text


async def test_a_body_over_the_limit_is_a_413_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    big = b'{"carrier_reference": "' + b"x" * (7 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/v1/bookings", content=big, headers={**auth("k-acme"), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert str(LIMIT) in response.text


async def test_a_streamed_body_without_content_length_is_cut_off_at_the_limit(
    client: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(7 * 16):  # 7 MB in 64 kB chunks, if anybody read them all
            sent += 1
            yield b"x" * (64 * 1024)

    response = await client.post(
        "/v1/bookings",
        content=chunks(),
        headers={**auth("k-acme"), "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413


async def test_a_huge_offset_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    huge = await client.get("/v1/bookings?offset=" + "9" * 30, headers=auth("k-acme"))
    assert huge.status_code == 422, huge.text
    beyond = await client.get("/v1/bookings?offset=2147483647", headers=auth("k-acme"))
    assert beyond.status_code == 200 and beyond.json() == []


async def test_a_reused_reference_with_other_content_is_an_idempotency_conflict(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/v1/bookings?wait=10", json=body("web-x"), headers=auth("k-acme"))
    assert first.status_code == 202 and first.json()["status"] == "confirmed"
    later = next_slot().replace(hour=next_slot().hour + 1).isoformat()
    other = await client.post(
        "/v1/bookings?wait=10", json=body("web-x", slot_start=later), headers=auth("k-acme")
    )
    assert other.status_code == 409, other.text
    detail = other.json()["detail"]
    assert detail["reason"] == "idempotency_conflict"
    assert detail["booking_id"] == first.json()["booking_id"]
    # the same content again is a resend: the original outcome, 202
    again = await client.post("/v1/bookings?wait=10", json=body("web-x"), headers=auth("k-acme"))
    assert again.status_code == 202 and again.json()["status"] == "confirmed"


async def test_stops_that_do_not_add_up_are_a_422_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    bad = body("bad")
    bad["consignment"]["parcel_count"] = 1000
    response = await client.post("/v1/bookings", json=bad, headers=auth("k-acme"))
    assert response.status_code == 422
    assert response.json()["detail"]["reason"] == "parcel_count_mismatch"
