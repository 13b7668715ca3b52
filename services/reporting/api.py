"""HTTP: the monthly emissions report of a city, for its officials and for admins.

``GET /v1/cities/{city}/reports/emissions/{YYYY-MM}`` - the format comes from ``?format=``
(json, csv, html, pdf) or, without it, from the Accept header (JSON by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from services.reporting import domain
from services.reporting.factors import FactorError
from services.reporting.render import FORMATS, render
from services.reporting.report import ReportUnavailable, UnknownCity

ACCEPT_TO_FORMAT = {
    "application/json": "json",
    "text/csv": "csv",
    "text/html": "html",
    "application/pdf": "pdf",
}


def negotiate(fmt: str | None, accept: str | None) -> str:
    if fmt:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}",
            )
        return fmt
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in ACCEPT_TO_FORMAT:
            return ACCEPT_TO_FORMAT[media]
    return "json"


def may_read_city(principal: Any, city_id: str) -> bool:
    """Admins read every city, officials their own (``official:<city>``)."""
    role = str(getattr(principal, "role", ""))
    return role == "admin" or (role == "official" and getattr(principal, "scope", None) == city_id)


def router(service: Any, principal_dependency: Callable[..., Any]) -> APIRouter:
    api = APIRouter(tags=["reporting"])

    @api.get(
        "/v1/cities/{city}/reports/emissions/{month}",
        summary="Monthly emissions-savings report of a city",
        responses={
            200: {"content": {m: {} for m in FORMATS.values()}},
            400: {"description": "malformed month or unknown format"},
            403: {"description": "the key is not an official of this city nor an admin"},
            404: {"description": "no booking of this city has ever been seen"},
        },
    )
    async def emissions_report(
        request: Request,
        city: str = Path(
            ..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
        ),
        month: str = Path(..., description="YYYY-MM, in the city's time zone"),
        format: str | None = Query(None, description="json, csv, html or pdf"),
        principal: Any = Depends(principal_dependency),
    ) -> Response:
        if not may_read_city(principal, city):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this key may not read the reports of {city!r}"
            )
        fmt = negotiate(format, request.headers.get("accept"))
        try:
            domain.parse_month(month)
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        try:
            report = await service.report(city, month)
        except UnknownCity as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except (FactorError, ReportUnavailable) as exc:
            raise HTTPException(422, str(exc)) from None
        # rendering (matplotlib, ReportLab) is CPU-bound: keep the event loop free
        body = await asyncio.to_thread(render, report, fmt)
        filename = f"emissions-{city}-{report['month']}.{fmt}"
        disposition = "inline" if fmt in {"html", "json"} else "attachment"
        return Response(
            content=body,
            media_type=FORMATS[fmt],
            headers={
                "Content-Disposition": f'{disposition}; filename="{filename}"',
                "X-Microhub-Inputs-Digest": report["inputs"]["digest"],
            },
        )

    return api
