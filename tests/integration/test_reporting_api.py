"""GET /v1/cities/{city}/reports/emissions/{YYYY-MM}: scoped to the city's officials and
admins, format by ?format= or Accept, clear 400/403/404 answers."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Header
from pypdf import PdfReader

from services.reporting.api import router
from services.reporting.service import ReportingService
from services.runtime.auth import Principal, Role
from services.runtime.settings import Settings
from tests.integration.test_reporting_scenario import EVENTS
from tests.support.reporting import apply


def principal(x_test_principal: str = Header(...)) -> Principal:
    """The platform's Principal from a `role:scope` header (no key file needed)."""
    role, _, scope = x_test_principal.partition(":")
    return Principal(Role(role), scope or None, name=x_test_principal)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    service = ReportingService(
        Settings(data_dir=tmp_path),
        ["127.0.0.1:9"],
        database_url=f"sqlite:///{tmp_path}/reporting.db",
    )
    await service.migrate()
    for event in EVENTS:
        await apply(service, event)
    app = FastAPI()
    app.include_router(router(service, principal))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    await service.engine.dispose()


URL = "/v1/cities/berlin/reports/emissions/2026-10"
OFFICIAL = {"X-Test-Principal": "official:berlin"}


async def test_official_gets_every_format(client: httpx.AsyncClient) -> None:
    as_json = await client.get(URL, headers=OFFICIAL)
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    body = json.loads(as_json.content)
    assert body["city"]["id"] == "berlin" and body["totals"]["saving_kgco2e"] != 0
    assert body["schema"] == "microhub.reporting.emissions_monthly.v2"
    assert as_json.headers["x-microhub-inputs-digest"] == body["inputs"]["digest"]
    assert as_json.headers["x-microhub-report-id"] == body["version"]["id"]

    by_accept = await client.get(URL, headers={**OFFICIAL, "Accept": "application/pdf"})
    assert by_accept.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(by_accept.content)).pages) >= 2

    html = await client.get(URL, headers={**OFFICIAL, "Accept": "text/html,application/xhtml+xml"})
    assert html.headers["content-type"].startswith("text/html") and b"<svg" in html.content
    csv = await client.get(URL + "?format=csv", headers={**OFFICIAL, "Accept": "application/pdf"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert 'filename="emissions-berlin-2026-10-v1.csv"' in csv.headers["content-disposition"]


@pytest.mark.parametrize("who", ["official:oslo", "carrier:acme", "operator:ber-westhafen"])
async def test_others_are_forbidden(client: httpx.AsyncClient, who: str) -> None:
    response = await client.get(URL, headers={"X-Test-Principal": who})
    assert response.status_code == 403
    assert "berlin" in response.json()["detail"]


async def test_admin_reads_any_city_and_errors_are_clear(client: httpx.AsyncClient) -> None:
    admin = {"X-Test-Principal": "admin"}
    assert (await client.get(URL, headers=admin)).status_code == 200
    unknown = await client.get("/v1/cities/paris/reports/emissions/2026-10", headers=admin)
    assert unknown.status_code == 404 and "paris" in unknown.json()["detail"]
    bad_month = await client.get("/v1/cities/berlin/reports/emissions/2026-13", headers=admin)
    assert bad_month.status_code == 400 and "YYYY-MM" in bad_month.json()["detail"]
    bad_format = await client.get(URL + "?format=docx", headers=admin)
    assert bad_format.status_code == 400 and "docx" in bad_format.json()["detail"]


async def test_a_city_with_an_unusable_time_zone_is_a_clear_422(tmp_path: Path) -> None:
    service = ReportingService(
        Settings(data_dir=tmp_path),
        ["127.0.0.1:9"],
        database_url=f"sqlite:///{tmp_path}/reporting.db",
    )
    await service.migrate()
    from services.reporting import store

    async with service.sessions() as session, session.begin():
        await store.upsert_city(
            session, city_id="atlantis", name="Atlantis", country="DE", timezone="Ocean/Atlantis"
        )
    app = FastAPI()
    app.include_router(router(service, principal))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get(
            "/v1/cities/atlantis/reports/emissions/2026-10", headers={"X-Test-Principal": "admin"}
        )
    await service.engine.dispose()
    assert response.status_code == 422 and "Ocean/Atlantis" in response.json()["detail"]


OPERATOR = {"X-Test-Principal": "operator:ber-westhafen"}
ENERGY = "/v1/hubs/ber-westhafen/energy/2026-10"


async def test_an_operator_records_the_hubs_meter_reading_and_mistakes_are_named(
    client: httpx.AsyncClient,
) -> None:
    ok = await client.put(ENERGY, json={"kwh": 812.5, "meter": "M-17"}, headers=OPERATOR)
    assert ok.status_code == 200, ok.text
    assert ok.json()["kwh"] == 812.5 and ok.json()["revision"] == 1
    again = await client.put(ENERGY, json={"kwh": 810}, headers=OPERATOR)
    assert again.json()["revision"] == 2
    listed = await client.get("/v1/hubs/ber-westhafen/energy", headers=OPERATOR)
    assert [r["kwh"] for r in listed.json()] == [810]
    report = json.loads((await client.get(URL, headers=OFFICIAL)).content)
    (hub,) = report["hub_energy"]
    assert hub["basis"] == "metered" and hub["kwh"] == 810

    negative = await client.put(ENERGY, json={"kwh": -3}, headers=OPERATOR)
    assert negative.status_code == 422 and "kwh" in negative.text
    typo = await client.put(ENERGY, json={"kwh": 3, "kwhs": 4}, headers=OPERATOR)
    assert typo.status_code == 422 and "kwhs" in typo.text
    future = await client.put(
        "/v1/hubs/ber-westhafen/energy/2099-01", json={"kwh": 3}, headers=OPERATOR
    )
    assert future.status_code == 422 and "2099-01" in future.json()["detail"]
    bad_month = await client.put(
        "/v1/hubs/ber-westhafen/energy/2026-13", json={"kwh": 3}, headers=OPERATOR
    )
    assert bad_month.status_code == 400 and "YYYY-MM" in bad_month.json()["detail"]
    unknown = await client.put(
        "/v1/hubs/nowhere/energy/2026-10", json={"kwh": 3}, headers={"X-Test-Principal": "admin"}
    )
    assert unknown.status_code == 404 and "nowhere" in unknown.json()["detail"]
    other = await client.put(
        ENERGY, json={"kwh": 3}, headers={"X-Test-Principal": "operator:ber-suedkreuz"}
    )
    assert other.status_code == 403


async def test_published_versions_are_listed_and_served_byte_for_byte(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get(URL, headers=OFFICIAL)
    await client.put(ENERGY, json={"kwh": 500}, headers=OPERATOR)
    second = await client.get(URL, headers=OFFICIAL)
    assert json.loads(second.content)["version"]["number"] == 2
    versions = (await client.get(URL + "/versions", headers=OFFICIAL)).json()
    assert [v["number"] for v in versions] == [1, 2]
    old = await client.get(URL + "?version=1", headers=OFFICIAL)
    assert old.content == first.content
    missing = await client.get(URL + "?version=9", headers=OFFICIAL)
    assert missing.status_code == 404


async def test_a_carrier_gets_its_shipment_footprints_and_they_add_up_to_its_report_row(
    client: httpx.AsyncClient,
) -> None:
    footprints = await client.get(
        "/v1/carriers/bolt/footprints/2026-10", headers={"X-Test-Principal": "carrier:bolt"}
    )
    assert footprints.status_code == 200, footprints.text
    doc = footprints.json()
    assert doc["schema"] == "microhub.reporting.carrier_footprints.v1"
    shipments = {f["extensions"][0]["data"]["shipmentId"]: f for f in doc["footprints"]}
    assert set(shipments) == {"b2", "b4"}
    tces = [t for f in doc["footprints"] for t in f["extensions"][0]["data"]["tces"]]
    # iLEAP numbers are decimal strings
    assert all(isinstance(t["co2eWTW"], str) for t in tces)
    report = json.loads((await client.get(URL, headers=OFFICIAL)).content)
    bolt = next(r for r in report["by_carrier"] if r["carrier_id"] == "bolt")
    assert sum(float(t["co2eWTW"]) for t in tces) == pytest.approx(bolt["actual_kgco2e"], rel=1e-4)
    assert {t["tocId"] for t in doc["tocs"]} >= {"berlin:bolt:depot-hub:diesel_van"}
    assert [h["hocId"] for h in doc["hocs"]] == ["berlin:ber-westhafen"]
    other = await client.get(
        "/v1/carriers/bolt/footprints/2026-10", headers={"X-Test-Principal": "carrier:acme"}
    )
    assert other.status_code == 403
    unknown = await client.get(
        "/v1/carriers/nobody/footprints/2026-10", headers={"X-Test-Principal": "admin"}
    )
    assert unknown.status_code == 404
