"""Assembly of the one HTTP application: each service contributes its routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from services.runtime.auth import ApiKeys

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
) -> FastAPI:
    """The public API: every router, and the health endpoints."""
    app = FastAPI(title=title, version="1.0", description=DESCRIPTION)
    principal = keys.principal_dependency()
    for make_router in routers:
        app.include_router(make_router(principal))
    add_health_routes(app, health=health, ready=ready)
    return app


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
