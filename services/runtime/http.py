"""Assembly of the one HTTP application: each service contributes its routes; and what
every route gets: a request body limit, strict JSON bodies, errors that always render."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import pydantic_core
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime.auth import ApiKeys

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
M = TypeVar("M", bound=BaseModel)

DESCRIPTION = """
microhub's HTTP API. Authenticate with an API key (`Authorization: Bearer <key>` or
`X-API-Key`); its scope decides what you may see: `carrier:<id>`, `operator:<hub>`,
`official:<city>` or `admin`.
"""


def create_app(
    *,
    keys: ApiKeys,
    routers: Iterable[Callable[[Callable[..., Any]], APIRouter]] = (),
    health: Callable[[], dict[str, Any]] | None = None,
    ready: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    title: str = "microhub",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The public API: every router, and the health endpoints; request bodies up to
    ``max_body_bytes`` (``MICROHUB_HTTP_MAX_BODY_BYTES``)."""
    app = FastAPI(title=title, version="1.0", description=DESCRIPTION)
    principal = keys.principal_dependency()
    for make_router in routers:
        app.include_router(make_router(principal))
    add_health_routes(app, health=health, ready=ready)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


# --- request bodies --------------------------------------------------------------------


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    return f"the request body is larger than {max_bytes} bytes (MICROHUB_HTTP_MAX_BODY_BYTES)"


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is refused with 413 before any
    handler parses it. A declared ``Content-Length`` over the limit is answered at once,
    without reading the body or calling the app; a body without one (chunked, streamed)
    is counted as it is read, and reading stops with 413 as soon as it passes the limit.
    Parsing megabytes of JSON would block the event loop: every consumer of the process
    would miss its heartbeats."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared < 0:
                await JSONResponse({"detail": "Content-Length is no size"}, 400)(
                    scope, receive, send
                )
                return
            if declared > self.max_bytes:
                await JSONResponse({"detail": _too_large(self.max_bytes)}, 413)(
                    scope, receive, send
                )
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)  # FastAPI answers it: 413
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await JSONResponse({"detail": _too_large(self.max_bytes)}, 413)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body size; -1 when the header is there but no size."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


def strict_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that reads the request body as ``model`` the way the Kafka consumers
    read a message (contracts/envelope.py ``decode``): strict JSON types (``"5"`` is no
    integer), no ``NaN``/``Infinity``. FastAPI's own body parsing is lax; a route that
    takes a contract's payload declares its body for the documentation and this for
    what it uses."""

    async def parse(request: Request) -> M:
        raw = await request.body()
        try:
            pydantic_core.from_json(raw, allow_inf_nan=False)
        except ValueError as exc:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": f"JSON: {exc}", "input": ""}]
            ) from exc
        try:
            return model.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]
            ) from exc

    return parse


def _finite(value: Any) -> Any:
    """What JSON can carry: a non-finite float as its name, bytes as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, whatever the input was: ``NaN`` in a body used to make the error
    itself unrenderable (a 500)."""
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, 422)


def create_health_app(
    *,
    health: Callable[[], dict[str, Any]],
    ready: Callable[[], Awaitable[dict[str, Any]]],
) -> FastAPI:
    """Only /healthz and /readyz: what a consuming service without the API serves, for
    its orchestrator's probes (no API keys, no documentation pages)."""
    app = FastAPI(title="microhub health", docs_url=None, redoc_url=None, openapi_url=None)
    add_health_routes(app, health=health, ready=ready)
    return app


def add_health_routes(
    app: FastAPI,
    *,
    health: Callable[[], dict[str, Any]] | None,
    ready: Callable[[], Awaitable[dict[str, Any]]] | None,
) -> None:
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        """Liveness: the process and its event loop answer (503 until started)."""
        report = health() if health else {"status": "ok"}
        code = 200 if report.get("status") == "ok" else 503
        return JSONResponse(report, status_code=code)

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Readiness: Kafka and the database reachable, every consumer assigned."""
        report = await ready() if ready else {"status": "ready"}
        code = 200 if report.get("status") == "ready" else 503
        return JSONResponse(report, status_code=code)
