"""The page routes. A person signs in once with an API key (``/ui/``); the key is kept
as a signed session (an HttpOnly, SameSite=Strict cookie naming the key by its digest),
so no key travels in a URL or a page. Each page needs a key with the right scope, like
the API behind it, and calls that API from the browser with the session."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from services.runtime.auth import SESSION_KEY, ApiKeys, Principal, Role, digest, forbid
from services.web import asyncapi
from services.web.layout import page

STATIC = Path(__file__).parent / "static"
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MEDIA = {"css": "text/css", "js": "text/javascript", "md": "text/markdown"}


class SignInRequired(Exception):
    """A page asked for without a session: the browser is sent to sign in first."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def caller_of(request: Request) -> Principal | None:
    keys: ApiKeys = request.app.state.keys
    return keys.caller(request)


async def signed_in(request: Request) -> Principal:
    """A page's dependency: the signed-in principal, or off to sign in."""
    found = caller_of(request)
    if found is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise SignInRequired(request.url.path + query)
    return found


def safe_next(target: str | None) -> str | None:
    """Only a path of this site (no scheme, no host, no ``//``): not an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def home_of(who: Principal) -> str:
    if who.role is Role.OPERATOR:
        return f"/ui/hubs/{quote(who.scope or '')}"
    if who.role is Role.OFFICIAL:
        return f"/ui/cities/{quote(who.scope or '')}"
    if who.role is Role.CARRIER:
        return f"/ui/carriers/{quote(who.scope or '')}"
    return "/ui/"


def _sign_in_form(next_url: str | None, error: str | None = None) -> str:
    problem = f'<p class="banner bad" role="alert">{html.escape(error)}</p>' if error else ""
    hidden = (
        f'<input type="hidden" name="next" value="{html.escape(next_url, quote=True)}">'
        if next_url
        else ""
    )
    return f"""{problem}<form class="signin" method="post" action="/ui/sign-in">
<label>API key <input type="password" name="key" id="key" autocomplete="current-password"
 required autofocus></label>{hidden}<button type="submit">Sign in</button></form>
<p class="hint">Your key decides what you see: a hub's operators its dispatch queue, a
city's officials its emissions report, a carrier its bookings. The key is kept in a
signed session cookie for this browser, never in a link. (<code>make demo</code> prints
ready-made keys.)</p>"""


def page_router(principal: Callable[..., Any]) -> APIRouter:
    ui = APIRouter(prefix="/ui", include_in_schema=False)

    @ui.get("/", response_class=HTMLResponse)
    async def index(request: Request, next: str | None = None) -> HTMLResponse:
        who = caller_of(request)
        if who is None:
            return page("Sign in", _sign_in_form(safe_next(next)), principal=None)
        scorecards = (
            f'<li><a href="{home_of(who)}/scorecards">Carrier scorecards</a></li>'
            if who.role is Role.OPERATOR
            else ""
        )
        body = f"""<p>Signed in as <b>{html.escape(who.name)}</b>.</p>
<ul class="links"><li><a href="{home_of(who)}">Your page</a></li>{scorecards}
<li>API: <a href="/docs">OpenAPI (Swagger UI)</a> · <a href="/ui/asyncapi">AsyncAPI</a></li>
</ul><section id="everything"></section>"""
        return page("Welcome", body, script="index.js", principal=who)

    @ui.post("/sign-in")
    async def sign_in(request: Request) -> Any:
        form = parse_qs((await request.body()).decode(errors="replace"))
        key = (form.get("key") or [""])[0].strip()
        next_url = safe_next((form.get("next") or [""])[0])
        keys: ApiKeys = request.app.state.keys
        who = keys.authenticate(key) if key else None
        if who is None:
            body = _sign_in_form(next_url, "That key is not known here.")
            return page("Sign in", body, status_code=status.HTTP_401_UNAUTHORIZED)
        request.session.clear()
        request.session[SESSION_KEY] = digest(key)
        return RedirectResponse(next_url or home_of(who), status.HTTP_303_SEE_OTHER)

    @ui.post("/sign-out")
    async def sign_out(request: Request) -> RedirectResponse:
        request.session.clear()
        return RedirectResponse("/ui/", status.HTTP_303_SEE_OTHER)

    @ui.get("/hubs/{hub_id}", response_class=HTMLResponse)
    async def hub_dashboard(hub_id: str, who: Principal = Depends(signed_in)) -> HTMLResponse:
        if not who.may_operate_hub(hub_id):
            raise forbid(f"this key does not operate hub {hub_id}")
        body = """
<section class="status"><span id="conn" class="pill">connecting…</span>
<label class="switch" hidden>Hub <select id="hub-switch"></select></label>
<span>hub time <b id="clock">-</b></span><span>waves today <b id="waves">0</b></span>
<span>last wave <b id="last-wave">-</b></span><span>updates <b id="updates">0</b></span></section>
<p id="problem" class="banner bad" role="alert" hidden></p>
<div class="grid">
<figure class="map"><svg id="map" viewBox="0 0 600 420" role="img"
 aria-label="schematic map of the hub, its waiting stops, routes and vehicles"></svg>
<figcaption>■ hub · <span class="k waiting">●</span> waiting · <span class="k expected">●</span>
expected · numbered: a route's stops in order (dashed: planned, solid: running) ·
▲ vehicle on its way (estimated from its start and planned duration)</figcaption></figure>
<section><h2>Waiting stops <small id="queue-count"></small></h2>
<table id="waiting"><thead><tr><th>carrier</th><th>reference</th><th>stop</th><th>parcels</th>
<th>why it waits</th><th>waiting since</th></tr></thead><tbody></tbody></table>
<p id="queue-empty" class="muted" hidden>Nothing waits for a vehicle.</p>
<h2>Today's waves</h2><table id="waves-table"><thead><tr><th>wave</th><th>planned</th>
<th>routes</th><th>stops</th><th>parcels</th><th>km</th><th>solver</th></tr></thead>
<tbody></tbody></table>
<h2>Vehicles</h2><table id="vehicles"><thead><tr><th>vehicle</th><th>type</th>
<th>state</th><th>battery</th><th>route</th><th>progress</th></tr></thead><tbody></tbody></table>
<h2>Routes</h2><table id="routes"><thead><tr><th>route</th><th>vehicle</th><th>status</th>
<th>stops</th><th>parcels</th><th>km</th><th>started</th></tr></thead><tbody></tbody></table>
</section></div>"""
        data = {"hub": hub_id, "admin": who.is_admin()}
        return page(f"Dispatch · {hub_id}", body, script="dashboard.js", data=data, principal=who)

    @ui.get("/cities/{city_id}", response_class=HTMLResponse)
    async def city_page(
        city_id: str, month: str | None = None, who: Principal = Depends(signed_in)
    ) -> HTMLResponse:
        if not who.may_read_city(city_id):
            raise forbid(f"this key may not read the reports of {city_id}")
        if month is not None and not MONTH.match(month):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "month must look like YYYY-MM")
        body = """
<form class="month" id="month-form"><label>Month <select id="month" name="month"></select>
</label><button>Show</button></form>
<p id="banner" class="banner" role="status" hidden></p>
<div id="report-part" hidden>
<p id="headline"></p>
<section id="totals" class="cards"></section>
<section class="downloads">Download: <a id="pdf">PDF</a> · <a id="csv">CSV</a> ·
<a id="json">JSON</a></section>
<h2>Daily difference to the modelled baseline (kg CO2e; above the line avoided, below
added)</h2><svg id="chart" viewBox="0 0 640 220" role="img" aria-label="daily difference chart"></svg>
<h2>The full report</h2><iframe id="report" title="monthly emissions report"></iframe></div>"""
        data = {"city": city_id, "month": month}
        return page(
            f"Emissions report · {city_id}", body, script="city.js", data=data, principal=who
        )

    @ui.get("/carriers/{carrier_id}", response_class=HTMLResponse)
    async def carrier_page(carrier_id: str, who: Principal = Depends(signed_in)) -> HTMLResponse:
        if not who.may_act_as_carrier(carrier_id):
            raise forbid(f"this key is not {carrier_id}'s")
        body = """<form id="filters" class="filters">
<label>Status <select name="status"><option value="">any</option>
<option>confirmed</option><option>rejected</option><option>cancelled</option>
<option>checked_in</option><option>no_show</option></select></label>
<label>Hub <select name="hub_id"><option value="">any</option></select></label>
<label>Slot from <input type="date" name="slot_from"></label>
<label>to <input type="date" name="slot_to"></label>
<label>Per page <select name="limit"><option>25</option><option selected>50</option>
<option>100</option><option>500</option></select></label>
<button type="submit">Filter</button>
<button type="button" id="csv">Download CSV</button></form>
<p id="count" role="status">loading…</p>
<table id="bookings"><thead><tr><th>slot (hub time)</th><th>hub</th><th>reference</th>
<th>status</th><th>reason</th><th>alternatives offered</th><th>decided (hub time)</th></tr>
</thead><tbody></tbody></table>
<nav class="pager"><button type="button" id="newer" disabled>← newer</button>
<span id="page">page 1</span><button type="button" id="older" disabled>older →</button></nav>"""
        data = {"carrier": carrier_id}
        return page(f"Bookings · {carrier_id}", body, script="carrier.js", data=data, principal=who)

    @ui.get("/asyncapi", response_class=HTMLResponse)
    async def asyncapi_page(request: Request) -> HTMLResponse:
        body = asyncapi.render_body(asyncapi.document())
        return page("AsyncAPI · Kafka contracts", body, principal=caller_of(request))

    @ui.get("/asyncapi.json")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(asyncapi.document())

    @ui.get("/static/{name:path}")
    async def static(name: str) -> FileResponse:
        # only the files shipped in the package, by exact name
        shipped = {
            p.relative_to(STATIC).as_posix(): p
            for p in STATIC.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }
        if name not in shipped:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {name!r}")
        media = MEDIA.get(name.rsplit(".", 1)[-1])
        headers = {"Cache-Control": "public, max-age=3600"}
        return FileResponse(shipped[name], media_type=media, headers=headers)

    return ui


def docs_router(principal: Callable[..., Any]) -> APIRouter:
    """``/docs``: Swagger UI from the package's own copy (services/web/static/vendor)."""
    docs = APIRouter(include_in_schema=False)

    @docs.get("/docs", response_class=HTMLResponse)
    async def swagger_ui(request: Request) -> HTMLResponse:
        body = '<div id="swagger-ui" data-openapi="/openapi.json"></div>'
        return page(
            "HTTP API (OpenAPI)",
            body,
            script="docs.js",
            principal=caller_of(request),
            styles=("vendor/swagger-ui.css",),
            scripts=("vendor/swagger-ui-bundle.js",),
        )

    @docs.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status.HTTP_307_TEMPORARY_REDIRECT)

    return docs


def routers(_settings: Any = None) -> list[Callable[[Callable[..., Any]], APIRouter]]:
    """Router factories for ``create_app(routers=...)`` (they get the key dependency)."""
    return [page_router, docs_router]
