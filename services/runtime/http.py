"""Assembly of the one HTTP application: each service contributes its routes."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime import metrics
from services.runtime.auth import ApiKeys

DESCRIPTION = """
microhub's HTTP API. Authenticate with an API key (`Authorization: Bearer <key>` or
`X-API-Key`); its scope decides what you may see: `carrier:<id>`, `operator:<hub>`,
`official:<city>` or `admin`. People sign in once at `/ui/` (a session cookie; keys
never go in URLs). Operations: `/healthz`, `/readyz`, `/metrics` (Prometheus).
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
    session_secret: str | None = None,
    session_https_only: bool = False,
    session_max_age: int = 8 * 3600,
    metrics_refresh: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """The public API: every router, the health endpoints, the signed session cookie of
    the pages' sign-in, and security headers on every response. (FastAPI's own /docs
    loads Swagger UI from a CDN: off; services/web serves it from the package.)"""
    app = FastAPI(
        title=title, version="1.0", description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    app.state.keys = keys
    principal = keys.principal_dependency()
    for make_router in routers:
        app.include_router(make_router(principal))
    add_health_routes(app, health=health, ready=ready, metrics_refresh=metrics_refresh)
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
    return app


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
