"""Server-rendered pages for people: sign-in, the hub operator's live dashboard, the city
official's report page, the carriers' bookings, and the API's documentation (Swagger UI
and the AsyncAPI contracts). Every asset ships in this package (no CDN: the machines may
be offline); the pages call the same public HTTP API as any client, with the session of
the person signed in (no key in a URL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.runtime.http import http_error as api_http_error
from services.runtime.http import validation_error as api_validation_error
from services.web import pages
from services.web.layout import error_page
from services.web.pages import SignInRequired, caller_of
from services.web.scorecards import scorecard_router


def routers(settings: Any = None) -> list[Callable[[Callable[..., Any]], APIRouter]]:
    """Router factories for ``create_app(routers=...)`` (they get the key dependency)."""
    return [*pages.routers(settings), scorecard_router]


# paths that answer machines (JSON errors, as before); everything else answers people
MACHINE_PREFIXES = ("/v1/", "/healthz", "/readyz", "/metrics", "/openapi.json")


def _for_people(request: Request) -> bool:
    path = request.url.path
    if path.startswith(MACHINE_PREFIXES):
        return False
    return path.startswith("/ui") or "text/html" in request.headers.get("accept", "")


def install(app: FastAPI) -> None:
    """HTML error pages for people (the API keeps its JSON errors) and the sign-in
    redirect of the pages."""

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        from urllib.parse import quote

        return RedirectResponse(f"/ui/?next={quote(exc.next_url, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _for_people(request):
            return await api_http_error(request, exc)  # the API's body: reason, message
        try:
            who = caller_of(request)
        except StarletteHTTPException:
            who = None
        detail = exc.detail if isinstance(exc.detail, str) else "the request was refused"
        if exc.status_code == 404 and not isinstance(exc.detail, str):
            detail = f"there is no page {request.url.path}"
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"there is no page {request.url.path}"
        return error_page(exc.status_code, detail, principal=who)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not _for_people(request):
            return await api_validation_error(request, exc)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return error_page(400, problems)


__all__ = ["install", "routers"]
