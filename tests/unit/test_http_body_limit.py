"""The request body limit (services/runtime/http.py): refused with 413 before a handler
parses anything, whether the client says the size up front or streams the body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from services.runtime.http import BodyLimit

LIMIT = 1000


def app_with_limit() -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    seen: list[int] = []

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"size": len(body)}

    app.add_middleware(BodyLimit, max_bytes=LIMIT)
    return app, seen


async def post(app: FastAPI, content, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/echo", content=content, headers=headers or {})


async def test_a_body_within_the_limit_passes() -> None:
    app, seen = app_with_limit()
    response = await post(app, b"x" * LIMIT)
    assert response.status_code == 200 and response.json() == {"size": LIMIT}
    assert seen == [LIMIT]


async def test_a_declared_size_over_the_limit_is_refused_without_calling_the_app() -> None:
    app, seen = app_with_limit()
    response = await post(app, b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["detail"] == (
        f"the request body is larger than {LIMIT} bytes (MICROHUB_HTTP_MAX_BODY_BYTES)"
    )
    assert seen == []


@pytest.mark.parametrize("chunk", [1, 300, 5000])
async def test_a_streamed_body_is_counted_and_cut_off(chunk: int) -> None:
    app, seen = app_with_limit()
    pulled = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(3 * LIMIT // chunk + 1):
            pulled += 1
            yield b"x" * chunk

    response = await post(app, stream())
    assert response.status_code == 413
    assert seen == []


async def test_a_streamed_body_within_the_limit_passes() -> None:
    app, seen = app_with_limit()

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 250

    response = await post(app, stream())
    assert response.status_code == 200 and seen == [LIMIT]


async def test_a_content_length_that_is_no_number_is_a_400() -> None:
    app, seen = app_with_limit()
    response = await post(app, b"{}", headers={"Content-Length": "lots"})
    assert response.status_code in (400, 413)
    assert seen == []
