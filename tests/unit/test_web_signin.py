"""Sign-in and the pages' security, on the HTTP app alone (no Kafka, no database): a
person signs in once and carries a signed, HttpOnly, SameSite=Strict cookie; no key
travels in a URL or a page; every response has security headers; people get HTML
error pages, machines JSON."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from fastapi import APIRouter, Depends

from services import web
from services.runtime.auth import ApiKeys, Principal
from services.runtime.http import CONTENT_SECURITY_POLICY, SESSION_COOKIE, create_app

HUB = "ber-westhafen"


def whoami(principal) -> APIRouter:
    """An API route behind the key dependency, like every service's."""
    api = APIRouter()

    @api.get("/v1/whoami")
    async def me(who: Principal = Depends(principal)) -> dict[str, str]:
        return {"name": who.name}

    return api


@pytest.fixture
async def client():
    routers = [*web.routers(), whoami]
    app = create_app(keys=ApiKeys.load(), routers=routers, session_secret="test-secret")
    web.install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def sign_in(client: httpx.AsyncClient, key: str, next_url: str | None = None):
    form = {"key": key} | ({"next": next_url} if next_url else {})
    return await client.post("/ui/sign-in", data=form)


async def test_a_page_sends_people_to_sign_in_first_and_back(client: httpx.AsyncClient) -> None:
    page = f"/ui/hubs/{HUB}"
    first = await client.get(page)
    assert first.status_code == 303
    assert first.headers["location"] == f"/ui/?next={quote(page, safe='')}"
    form = await client.get(first.headers["location"])
    assert form.status_code == 200 and 'name="key"' in form.text and page in form.text

    signed = await sign_in(client, f"demo-operator-{HUB}", page)
    assert signed.status_code == 303 and signed.headers["location"] == page
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert f"demo-operator-{HUB}" not in cookie  # the key's digest, signed; not the key

    dashboard = await client.get(page)
    assert dashboard.status_code == 200
    assert "demo-operator" not in dashboard.text  # no key in the page
    # the API behind it answers the same session
    assert (await client.get("/v1/whoami")).json() == {"name": "Westhafen hub desk"}


async def test_a_key_in_the_url_is_not_a_sign_in(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"/ui/hubs/{HUB}?api_key=demo-admin")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/?next=")
    api = await client.get("/v1/whoami?api_key=demo-admin")
    assert api.status_code == 401
    assert (await client.get("/v1/whoami", headers={"X-API-Key": "demo-admin"})).is_success


async def test_wrong_key_and_foreign_redirects_are_refused(client: httpx.AsyncClient) -> None:
    wrong = await sign_in(client, "not-a-key")
    assert wrong.status_code == 401 and "not known" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        signed = await sign_in(client, "demo-official-berlin", target)
        assert signed.headers["location"] == "/ui/cities/berlin", target  # their own page


async def test_signing_out_ends_the_session(client: httpx.AsyncClient) -> None:
    await sign_in(client, "demo-carrier-parcelco")
    assert (await client.get("/ui/carriers/parcelco")).status_code == 200
    assert (await client.get("/ui/carriers/swiftpost")).status_code == 403
    out = await client.post("/ui/sign-out")
    assert out.status_code == 303
    assert (await client.get("/ui/carriers/parcelco")).status_code == 303


@pytest.mark.parametrize("path", ["/ui/", "/docs", "/ui/asyncapi", "/v1/whoami", "/nothing"])
async def test_every_response_has_security_headers(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path)
    headers = answer.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["referrer-policy"] == "same-origin"


async def test_people_get_html_errors_machines_json(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/nothing-here")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "there is no page /ui/nothing-here" in page.text
    api = await client.get("/v1/nothing-here")
    assert api.status_code == 404
    assert api.json() == {"reason": "not_found", "message": "Not Found", "detail": "Not Found"}
    root = await client.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    await sign_in(client, "demo-carrier-parcelco")
    forbidden = await client.get(f"/ui/hubs/{HUB}")
    assert forbidden.status_code == 403 and "does not operate" in forbidden.text
    assert forbidden.headers["content-type"].startswith("text/html")


async def test_docs_and_asyncapi_come_from_the_package(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/ui/static/vendor/swagger-ui-bundle.js" in docs.text
    assert "http://" not in docs.text.replace('href="/', "") and "https://" not in docs.text
    for asset in ("vendor/swagger-ui-bundle.js", "vendor/swagger-ui.css", "docs.js"):
        answer = await client.get(f"/ui/static/{asset}")
        assert answer.status_code == 200 and len(answer.content) > 100, asset
    assert (await client.get("/ui/static/../pages.py")).status_code == 404
    asyncapi = await client.get("/ui/asyncapi")
    assert asyncapi.status_code == 200
    assert "microhub.booking.commands.v1" in asyncapi.text and "BookingRequested" in asyncapi.text
    assert (await client.get("/ui/asyncapi.json")).json()["asyncapi"].startswith("3.")


async def test_a_health_port_serves_metrics_too() -> None:
    from services.runtime.http import create_health_app

    async def ready() -> dict:
        return {"status": "ready"}

    app = create_health_app(health=lambda: {"status": "ok"}, ready=ready)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://h") as c:
        answer = await c.get("/metrics")
    assert answer.status_code == 200
    assert "# TYPE microhub_consumer_lag gauge" in answer.text
