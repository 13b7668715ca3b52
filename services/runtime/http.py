"""Assembly of the one HTTP application: each service contributes its routes; and what
every route gets: a request body limit, strict JSON bodies, errors that always render."""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any, TypeVar

import pydantic_core
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from pydantic import BaseModel, ValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime import metrics
from services.runtime.auth import ApiKeys

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
M = TypeVar("M", bound=BaseModel)

DESCRIPTION = """
microhub's HTTP API. Authenticate with an API key (`Authorization: Bearer <key>` or
`X-API-Key`); its scope decides what you may see: `carrier:<id>`, `operator:<hub>`,
`official:<city>` or `admin`. People sign in once at `/ui/` (a session cookie; keys
never go in URLs). Operations: `/healthz`, `/readyz`, `/metrics` (Prometheus).

Errors: every error body is a JSON object with `reason` (a stable code: a refusal's own,
such as `idempotency_conflict` or `unknown_carrier`, else one per status — `bad_request`,
`unauthorized`, `forbidden`, `not_found`, `method_not_allowed`, `conflict`,
`body_too_large`, `invalid_request`, `unavailable`) and `message` (what was wrong);
`detail` holds the same in FastAPI's form (for `invalid_request`, the list of problems).
"""


# Every response: pages may load only the package's own assets (no inline script, no
# CDN), may be framed only by the platform's own pages (the city page frames its
# report), and send no Referer elsewhere. A response may set its own CSP (the report's
# HTML, a standalone document with inline styles and no script, does).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
SESSION_COOKIE = "microhub_session"


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response (pure ASGI:
    streaming responses such as the SSE queue pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    *,
    keys: ApiKeys,
    routers: Iterable[Callable[[Callable[..., Any]], APIRouter]] = (),
    health: Callable[[], dict[str, Any]] | None = None,
    ready: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    title: str = "microhub",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    session_secret: str | None = None,
    session_https_only: bool = False,
    session_max_age: int = 8 * 3600,
    metrics_refresh: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """The public API: every router, the health endpoints, the signed session cookie of
    the pages' sign-in, and security headers on every response; request bodies up to
    ``max_body_bytes`` (``MICROHUB_HTTP_MAX_BODY_BYTES``). (FastAPI's own /docs loads
    Swagger UI from a CDN: off; services/web serves it from the package.)"""
    app = FastAPI(
        title=title, version="1.0", description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    app.state.keys = keys
    principal = keys.principal_dependency()
    for make_router in routers:
        app.include_router(make_router(principal))
    add_health_routes(app, health=health, ready=ready, metrics_refresh=metrics_refresh)
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    _document_error_bodies(app)
    app.add_middleware(
        SessionMiddleware,
        # unset: a random secret per process (a restart signs everyone out)
        secret_key=session_secret or secrets.token_urlsafe(32),
        session_cookie=SESSION_COOKIE,
        max_age=session_max_age,
        same_site="strict",
        https_only=session_https_only,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(metrics.HttpMetrics)
    # a server span per request (its traceparent header, if any, continued); no spans
    # for the ASGI messages themselves (an SSE stream would make one per event)
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )
    # outermost: a body over the limit is refused before anything reads it
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
                await JSONResponse(error_body(400, "Content-Length is no size"), 400)(
                    scope, receive, send
                )
                return
            if declared > self.max_bytes:
                await JSONResponse(error_body(413, _too_large(self.max_bytes)), 413)(
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
            await JSONResponse(error_body(413, _too_large(self.max_bytes)), 413)(
                scope, receive, send
            )


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


# --- error bodies ----------------------------------------------------------------------

# the code of an error raised with a message only (a refusal raised with a dict names
# its own reason: unknown_carrier, idempotency_conflict, parcel_count_mismatch, …)
_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


def error_body(status_code: int, detail: Any) -> dict[str, Any]:
    """The body of every error the API answers: ``reason`` (a stable code, for programs)
    and ``message`` (what was wrong, for people) at the top, whatever raised it, and
    ``detail`` as FastAPI writes it (a client that reads ``detail`` keeps working). A
    refusal raised with ``{"reason", "message", …}`` keeps its own fields; a request
    that is not the contract names the first field that is wrong."""
    if isinstance(detail, dict) and "reason" in detail:
        return {**detail, "detail": detail}
    if isinstance(detail, list):
        return {"reason": "invalid_request", "message": _first_problem(detail), "detail": detail}
    if isinstance(detail, str):
        message = detail
    else:
        try:
            message = HTTPStatus(status_code).phrase
        except ValueError:
            message = f"HTTP {status_code}"
    reason = _REASONS.get(status_code, f"http_{status_code}")
    return {"reason": reason, "message": message, "detail": detail}


def _first_problem(errors: list[Any]) -> str:
    """``body.consignment.parcel_count: Input should be a valid integer (and 2 more)``."""
    if not errors:
        return "the request is not what this operation takes"
    first = errors[0] if isinstance(errors[0], dict) else {"msg": str(errors[0])}
    where = ".".join(str(part) for part in first.get("loc", ()))
    text = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
    return text + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def _document_error_bodies(app: FastAPI) -> None:
    """The generated OpenAPI's 422 body (FastAPI's ``HTTPValidationError``) with the
    ``reason`` and ``message`` every error carries (:func:`error_body`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI keeps it: this runs its change once
        error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        if error is not None and "reason" not in error.get("properties", {}):
            error["properties"] = {
                "reason": {"type": "string", "description": "invalid_request"},
                "message": {"type": "string", "description": "the first problem, for people"},
                **error.get("properties", {}),
            }
            error["required"] = ["reason", "message", *error.get("required", [])]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The 422 of a request that is not the contract, whatever the input was: ``NaN`` in
    a body used to make the error itself unrenderable (a 500)."""
    return JSONResponse(error_body(422, _finite(jsonable_encoder(exc.errors()))), 422)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Every other error (raised by a route, by authentication, or an unknown path), as
    :func:`error_body` says; its headers (``Retry-After``, ``WWW-Authenticate``) kept."""
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=exc.headers)
    body = _finite(jsonable_encoder(error_body(exc.status_code, exc.detail)))
    return JSONResponse(body, exc.status_code, headers=exc.headers)


def create_health_app(
    *,
    health: Callable[[], dict[str, Any]],
    ready: Callable[[], Awaitable[dict[str, Any]]],
    metrics_refresh: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """Only /healthz, /readyz and /metrics: what a consuming service without the API
    serves, for its orchestrator's probes and Prometheus (no API keys, no pages)."""
    app = FastAPI(title="microhub health", docs_url=None, redoc_url=None, openapi_url=None)
    add_health_routes(app, health=health, ready=ready, metrics_refresh=metrics_refresh)
    return app


def add_health_routes(
    app: FastAPI,
    *,
    health: Callable[[], dict[str, Any]] | None,
    ready: Callable[[], Awaitable[dict[str, Any]]] | None,
    metrics_refresh: Callable[[], Awaitable[None]] | None = None,
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

    @app.get("/metrics", tags=["operations"])
    async def prometheus_metrics() -> Response:
        """Prometheus metrics of this process (docs/observability.md)."""
        if metrics_refresh is not None:
            await metrics_refresh()
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)
