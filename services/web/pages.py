"""The page routes. Each page needs a key with the right scope, like the API behind it."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

import contracts
from services.runtime.auth import forbid

STATIC = Path(__file__).parent / "static"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _page(title: str, body: str, *, script: str | None, data: dict[str, Any]) -> HTMLResponse:
    # the page's parameters travel as JSON in a data element: no string pasted into JS
    boot = html.escape(json.dumps(data), quote=True)
    script_tag = f'<script src="/ui/static/{script}" defer></script>' if script else ""
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · microhub</title>
<link rel="stylesheet" href="/ui/static/app.css">{script_tag}
</head><body data-boot="{boot}">
<header><a class="brand" href="/ui/">microhub</a><h1>{html.escape(title)}</h1></header>
<main>{body}</main>
</body></html>"""
    )


def page_router(principal: Callable[..., Any]) -> APIRouter:
    ui = APIRouter(prefix="/ui", include_in_schema=False)

    @ui.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        body = """
<p>Open a page with your API key (the demo prints ready-made keys):</p>
<ul>
<li>Hub operator: <code>/ui/hubs/&lt;hub&gt;?api_key=…</code></li>
<li>City official: <code>/ui/cities/&lt;city&gt;?api_key=…</code></li>
<li>Carrier: <code>/ui/carriers/&lt;carrier&gt;?api_key=…</code></li>
<li>API: <a href="/docs">OpenAPI</a>, <a href="/ui/asyncapi">AsyncAPI</a></li>
</ul>"""
        return _page("Welcome", body, script=None, data={})

    @ui.get("/hubs/{hub_id}", response_class=HTMLResponse)
    async def hub_dashboard(
        hub_id: str, api_key: str = Query(""), who: Any = Depends(principal)
    ) -> HTMLResponse:
        if not who.may_operate_hub(hub_id):
            raise forbid(f"this key does not operate {hub_id}")
        body = """
<section class="status"><span id="conn" class="pill">connecting…</span>
<span>event time <b id="clock">-</b></span><span>waves <b id="waves">0</b></span>
<span>updates <b id="updates">0</b></span></section>
<div class="grid">
<figure class="map"><svg id="map" viewBox="0 0 600 420" role="img"
 aria-label="schematic map of the hub, stops and routes"></svg>
<figcaption>● hub · <span class="k waiting">●</span> waiting · <span class="k expected">●</span>
expected · lines: planned (dashed) and running routes</figcaption></figure>
<section><h2>Vehicles</h2><table id="vehicles"><thead><tr><th>vehicle</th><th>type</th>
<th>state</th><th>battery</th><th>route</th></tr></thead><tbody></tbody></table>
<h2>Routes</h2><table id="routes"><thead><tr><th>route</th><th>status</th><th>stops</th>
<th>parcels</th><th>km</th></tr></thead><tbody></tbody></table>
<h2>Queue</h2><p id="queue">-</p></section></div>"""
        data = {"hub": hub_id, "key": api_key}
        return _page(f"Dispatch queue · {hub_id}", body, script="dashboard.js", data=data)

    @ui.get("/cities/{city_id}", response_class=HTMLResponse)
    async def city_page(
        city_id: str,
        api_key: str = Query(""),
        month: str | None = Query(None, description="YYYY-MM; default: this month"),
        who: Any = Depends(principal),
    ) -> HTMLResponse:
        if not who.may_read_city(city_id):
            raise forbid(f"this key may not read {city_id}")
        month = month or datetime.now(UTC).strftime("%Y-%m")
        if not MONTH.match(month):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "month must look like YYYY-MM")
        body = """
<form class="month"><label>Month <input type="month" id="month" name="month"></label>
<input type="hidden" name="api_key" id="key"><button>Show</button></form>
<p id="headline"></p>
<section id="totals" class="cards"></section>
<section class="downloads">Download: <a id="pdf">PDF</a> · <a id="csv">CSV</a> ·
<a id="json">JSON</a></section>
<h2>Daily difference to the modelled baseline (kg CO2e; above the line avoided, below
added)</h2><svg id="chart" viewBox="0 0 640 220" role="img" aria-label="daily difference chart"></svg>
<h2>The full report</h2><iframe id="report" title="monthly emissions report"></iframe>"""
        data = {"city": city_id, "key": api_key, "month": month}
        return _page(f"Emissions report · {city_id}", body, script="city.js", data=data)

    @ui.get("/carriers/{carrier_id}", response_class=HTMLResponse)
    async def carrier_page(
        carrier_id: str, api_key: str = Query(""), who: Any = Depends(principal)
    ) -> HTMLResponse:
        if not who.may_act_as_carrier(carrier_id):
            raise forbid(f"this key is not {carrier_id}'s")
        body = """<p id="count">loading…</p><table id="bookings"><thead><tr><th>reference</th>
<th>hub</th><th>slot</th><th>status</th><th>updated</th></tr></thead><tbody></tbody></table>"""
        data = {"carrier": carrier_id, "key": api_key}
        return _page(f"Bookings · {carrier_id}", body, script="carrier.js", data=data)

    @ui.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        # only the files shipped in the package, by exact name
        shipped = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in shipped:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {name!r}")
        media = {"css": "text/css", "js": "text/javascript"}.get(name.rsplit(".", 1)[-1])
        return FileResponse(shipped[name], media_type=media)

    @ui.get("/asyncapi")
    async def asyncapi() -> JSONResponse:
        path = Path(contracts.__file__).parent / "asyncapi.json"
        return JSONResponse(json.loads(path.read_text(encoding="utf-8")))

    return ui


def routers(_settings: Any = None) -> list[Callable[[Callable[..., Any]], APIRouter]]:
    """Router factories for ``create_app(routers=...)`` (they get the key dependency)."""
    return [page_router]
