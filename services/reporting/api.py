"""HTTP: the monthly emissions report of a city, for its officials and admins; the hubs'
metered energy, from their operators; carriers' shipment footprints for their Scope 3.

``GET /v1/cities/{city}/reports/emissions/{YYYY-MM}`` - the format comes from ``?format=``
(json, csv, html, pdf) or, without it, from the Accept header (JSON by default);
``?version=n`` gives a published version of a closed month byte for byte.
``GET .../{YYYY-MM}/versions`` lists them.
``PUT /v1/hubs/{hub}/energy/{YYYY-MM}`` records a meter reading (operator of the hub or
admin), ``GET /v1/hubs/{hub}/energy`` lists them.
``GET /v1/carriers/{carrier}/footprints/{YYYY-MM}`` - ISO 14083 shipment footprints in
the iLEAP / PACT data model (the carrier itself or admin).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from services.reporting import domain
from services.reporting.factors import FactorError
from services.reporting.hub_energy import FutureMonth, MeterReading, UnknownHub
from services.reporting.model import EmissionsReport
from services.reporting.render import FORMATS, render
from services.reporting.report import ReportUnavailable, UnknownCity
from services.runtime.auth import Principal

ACCEPT_TO_FORMAT = {
    "application/json": "json",
    "text/csv": "csv",
    "text/html": "html",
    "application/pdf": "pdf",
}


REPORT_HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)


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


def _month(month: str) -> str:
    try:
        domain.parse_month(month)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return month


def Identifier() -> Any:
    return Path(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")


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
        version: int | None = Query(
            None, ge=1, description="a published version of a closed month"
        ),
        principal: Principal = Depends(principal_dependency),
    ) -> Response:
        if not principal.may_read_city(city):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this key may not read the reports of {city!r}"
            )
        fmt = negotiate(format, request.headers.get("accept"))
        _month(month)
        try:
            if version is not None:
                body = await service.published(city, month, version)
                if body is None:
                    raise HTTPException(
                        status.HTTP_404_NOT_FOUND,
                        f"no version {version} of the report of {city} {month} has been published",
                    )
                report = EmissionsReport.from_json(body)
            else:
                report = await service.report(city, month)
        except UnknownCity as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except (FactorError, ReportUnavailable) as exc:
            raise HTTPException(422, str(exc)) from None
        # rendering (matplotlib, ReportLab) is CPU-bound: keep the event loop free
        body = await asyncio.to_thread(render, report, fmt)
        suffix = f"-v{report.version.number}" if report.version.number else ""
        filename = f"emissions-{city}-{report.month}{suffix}.{fmt}"
        disposition = "inline" if fmt in {"html", "json"} else "attachment"
        headers = {
            "Content-Disposition": f'{disposition}; filename="{filename}"',
            "X-Microhub-Inputs-Digest": report.inputs.digest,
            "X-Microhub-Report-Id": report.version.id,
        }
        if fmt == "html":
            # a standalone document: inline styles and SVG charts, no script at all
            headers["Content-Security-Policy"] = REPORT_HTML_CSP
        return Response(content=body, media_type=FORMATS[fmt], headers=headers)

    @api.get(
        "/v1/cities/{city}/reports/emissions",
        summary="The months with data of a city, each with its coverage (partial or not)",
        responses={404: {"description": "no booking of this city has ever been seen"}},
    )
    async def report_months(
        city: str = Identifier(), principal: Principal = Depends(principal_dependency)
    ) -> list[dict[str, Any]]:
        if not principal.may_read_city(city):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this key may not read the reports of {city!r}"
            )
        try:
            return await service.months(city)
        except UnknownCity as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None

    @api.get(
        "/v1/cities/{city}/reports/emissions/{month}/versions",
        summary="Published versions of a closed month's report",
    )
    async def report_versions(
        city: str = Identifier(),
        month: str = Path(...),
        principal: Principal = Depends(principal_dependency),
    ) -> list[dict[str, Any]]:
        if not principal.may_read_city(city):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this key may not read the reports of {city!r}"
            )
        return await service.report_versions(city, _month(month))

    @api.put(
        "/v1/hubs/{hub}/energy/{month}",
        summary="Record a hub's metered electricity of a month (replaces the modelled default)",
        responses={
            400: {"description": "malformed month"},
            403: {"description": "not an operator of this hub nor an admin"},
            404: {"description": "reporting knows no such hub (no booking at it yet)"},
            422: {
                "description": "invalid reading (the detail names the field), or a month not begun"
            },
        },
    )
    async def put_hub_energy(
        reading: MeterReading,
        hub: str = Identifier(),
        month: str = Path(..., description="YYYY-MM, in the hub's city's time zone"),
        principal: Principal = Depends(principal_dependency),
    ) -> dict[str, Any]:
        if not principal.may_operate_hub(hub):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"meter readings of hub {hub} come from its operators (operator:{hub}) or admins",
            )
        _month(month)
        try:
            return await service.put_hub_energy(
                hub, month, reading, str(getattr(principal, "name", ""))
            )
        except UnknownHub as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except FutureMonth as exc:
            raise HTTPException(422, str(exc)) from None

    @api.get("/v1/hubs/{hub}/energy", summary="A hub's meter readings, per month")
    async def get_hub_energy(
        hub: str = Identifier(), principal: Principal = Depends(principal_dependency)
    ) -> list[dict[str, Any]]:
        if not principal.may_operate_hub(hub):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the readings of hub {hub} are for its operators and admins",
            )
        readings = await service.hub_energy(hub)
        if readings is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"reporting knows no hub {hub!r}")
        return readings

    @api.get(
        "/v1/carriers/{carrier}/footprints/{month}",
        summary="A carrier's shipment footprints of a month (ISO 14083, iLEAP / PACT data model)",
        responses={404: {"description": "no consignment of this carrier has been seen"}},
    )
    async def carrier_footprints(
        carrier: str = Identifier(),
        month: str = Path(...),
        principal: Principal = Depends(principal_dependency),
    ) -> dict[str, Any]:
        if not principal.may_act_as_carrier(carrier):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the footprints of {carrier} are for its own keys (carrier:{carrier}) and admins",
            )
        try:
            document = await service.footprints(carrier, _month(month))
        except (FactorError, ReportUnavailable) as exc:
            raise HTTPException(422, str(exc)) from None
        if document is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no consignment of carrier {carrier!r} has been seen"
            )
        return document

    return api
