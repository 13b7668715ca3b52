"""Every error the HTTP API answers has ``reason`` and ``message`` at the top of its JSON
body (services/runtime/http.py ``error_body``), as the README says, with FastAPI's
``detail`` kept beside them; through the assembled app, with the pages installed (their
handlers answer machines with the API's body)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, ConfigDict

from services import web
from services.runtime.auth import ApiKeys, Principal, forbid
from services.runtime.http import create_app, strict_body

KEY = {"Authorization": "Bearer demo-admin"}
LIMIT = 2_000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parcel_count: int
    reference: str


def routes(principal: Any) -> APIRouter:
    api = APIRouter()
    Caller = Depends(principal)

    @api.post("/v1/things")
    async def things(
        body: Body, strict: Body = Depends(strict_body(Body)), who: Principal = Caller
    ) -> dict[str, int]:
        return {"parcel_count": strict.parcel_count}

    @api.post("/v1/refused")
    async def refused(who: Principal = Caller) -> None:
        raise HTTPException(
            409, {"reason": "idempotency_conflict", "message": "m", "booking_id": "b"}
        )

    @api.post("/v1/busy")
    async def busy(who: Principal = Caller) -> None:
        raise HTTPException(
            503, {"reason": "unavailable", "message": "later"}, {"Retry-After": "2"}
        )

    @api.get("/v1/theirs")
    async def theirs(who: Principal = Caller) -> None:
        raise forbid("only the booking's carrier can move it")

    @api.delete("/v1/nothing", status_code=204)
    async def nothing(who: Principal = Caller) -> Response:
        raise HTTPException(304)

    return api


@pytest.fixture
async def client():
    app = create_app(keys=ApiKeys.load(), routers=[*web.routers(), routes], max_body_bytes=LIMIT)
    web.install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def top(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert isinstance(body["message"], str) and body["message"], body
    assert "detail" in body, body  # FastAPI's form, for clients that read it
    return response.status_code, body["reason"], body["message"]


async def test_a_refusal_keeps_its_own_fields_at_the_top(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/refused", headers=KEY)
    assert top(response) == (409, "idempotency_conflict", "m")
    assert response.json()["booking_id"] == "b"
    assert response.json()["detail"]["reason"] == "idempotency_conflict"


async def test_a_retry_later_keeps_its_header(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/busy", headers=KEY)
    assert top(response) == (503, "unavailable", "later")
    assert response.headers["retry-after"] == "2"


async def test_errors_raised_with_a_message_get_a_code(client: httpx.AsyncClient) -> None:
    forbidden = await client.get("/v1/theirs", headers=KEY)
    assert top(forbidden) == (403, "forbidden", "only the booking's carrier can move it")
    unknown = await client.get("/v1/no-such-route", headers=KEY)
    assert top(unknown) == (404, "not_found", "Not Found")
    wrong_verb = await client.get("/v1/refused", headers=KEY)
    assert top(wrong_verb)[:2] == (405, "method_not_allowed")
    no_key = await client.get("/v1/theirs")
    assert top(no_key)[:2] == (401, "unauthorized")


async def test_a_body_that_is_not_the_contract_names_the_first_wrong_field(
    client: httpx.AsyncClient,
) -> None:
    wrong_type = await client.post(
        "/v1/things", headers=KEY, content=b'{"parcel_count": "5", "reference": 7}'
    )
    status, reason, message = top(wrong_type)
    assert (status, reason) == (422, "invalid_request")
    assert message.startswith("body.") and "(and 1 more)" in message
    assert isinstance(wrong_type.json()["detail"], list)
    not_finite = await client.post(
        "/v1/things", headers=KEY, content=b'{"parcel_count": NaN, "reference": "r"}'
    )
    assert top(not_finite)[:2] == (422, "invalid_request")
    not_json = await client.post("/v1/things", headers=KEY, content=b"[" * 50)
    assert top(not_json)[:2] == (422, "invalid_request")


async def test_a_body_over_the_limit_is_refused_with_the_same_shape(
    client: httpx.AsyncClient,
) -> None:
    declared = await client.post("/v1/things", headers=KEY, content=b"x" * (LIMIT + 1))
    status, reason, message = top(declared)
    assert (status, reason) == (413, "body_too_large") and str(LIMIT) in message

    async def streamed():
        for _ in range(3):
            yield b"x" * LIMIT

    chunked = await client.post("/v1/things", headers=KEY, content=streamed())
    assert top(chunked)[:2] == (413, "body_too_large")


async def test_a_status_without_a_body_gets_none(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/nothing", headers=KEY)
    assert response.status_code == 304 and response.content == b""


async def test_the_openapi_document_says_so(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    error = document["components"]["schemas"]["HTTPValidationError"]
    assert {"reason", "message", "detail"} <= set(error["properties"])
    assert {"reason", "message"} <= set(error["required"])
    assert "`reason`" in document["info"]["description"]
