"""The pages in a real browser: Debian's Chromium driven by Playwright, offline (any
request that leaves the machine fails the test).

A person signs in once (no key in any URL); while the simulation runs, the operator
dashboard shows a waiting stop and a route drawn through its stops in order without a
reload (SSE); afterwards the city page offers the months with data and says when a month
has none, the carrier page filters and pages its bookings and exports them as CSV, and
/docs renders Swagger UI from the package's own assets. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.async_api import Page, Route, async_playwright

from services.app.demo import demo_settings
from services.app.platform import Platform
from services.app.simulate import new_simulation
from services.runtime.kafka import KafkaCluster
from services.runtime.settings import Settings
from tests.e2e.conftest import ARTIFACTS, CHROMIUM_ARGS

HUB, CITY = "ber-westhafen", "berlin"
ADMIN = {"Authorization": "Bearer demo-admin"}


@pytest.fixture
async def platform(settings: Settings, topics: list[str], kafka_cluster) -> AsyncIterator[Platform]:
    s = demo_settings(settings, settings.data_dir).model_copy(update={"http_port": 0})
    cluster = KafkaCluster(s, bootstrap=kafka_cluster.bootstrap, embedded=kafka_cluster.embedded)
    p = await Platform(s, cluster=cluster).start()
    try:
        yield p
    finally:
        await p.stop()


async def offline(page: Page, base: str) -> list[str]:
    """Fail every request that is not to the platform itself; returns them."""
    left: list[str] = []
    host = urlparse(base).netloc

    async def only_local(route: Route) -> None:
        url = route.request.url
        if urlparse(url).netloc == host or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            left.append(url)
            await route.abort()

    await page.route("**/*", only_local)
    return left


async def sign_in(page: Page, base: str, key: str, then: str) -> None:
    await page.goto(f"{base}{then}")
    assert page.url.startswith(f"{base}/ui/?next="), page.url  # sent to sign in first
    await page.fill("#key", key)
    await page.click("form.signin button")
    await page.wait_for_url(f"{base}{then}")


async def route_through_its_stops(page: Page) -> None:
    """Some route's line runs hub -> its stops in sequence order -> hub."""
    checked = await page.evaluate(
        """() => [...document.querySelectorAll('#map polyline.route')].map((line) => {
            const points = line.getAttribute('points').split(' ');
            const stops = [...document.querySelectorAll(
                `#map circle.route-stop[data-route="${line.dataset.route}"]`)]
                .sort((a, b) => a.dataset.sequence - b.dataset.sequence)
                .map((c) => `${c.getAttribute('cx')},${c.getAttribute('cy')}`);
            return stops.length > 0 && points.length === stops.length + 2
                && points[0] === points[points.length - 1]
                && stops.every((s, i) => s === points[i + 1]);
        })"""
    )
    assert checked and all(checked), checked


async def test_pages_in_chromium(platform: Platform, chromium: Path, tmp_path: Path) -> None:
    base = str(platform.base_url)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, accept_downloads=True
            )
            page = await context.new_page()
            # (wait_for_function takes arrow functions below: an expression string would be
            # eval'd in the page, which its CSP refuses)
            left = await offline(page, base)
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )

            # a wrong key is refused on the sign-in page; a carrier's key may not see the hub
            await page.goto(f"{base}/ui/")
            await page.fill("#key", "not-a-key")
            await page.click("form.signin button")
            await page.wait_for_selector(".banner.bad")
            await sign_in(page, base, "demo-carrier-parcelco", "/ui/carriers/parcelco")
            refused = await page.goto(f"{base}/ui/hubs/{HUB}")
            assert refused is not None and refused.status == 403
            assert await page.locator(".error .message").inner_text()  # an HTML error page
            await page.click("header .signed button")  # sign out
            await page.wait_for_url(f"{base}/ui/")

            # the dashboard, opened before any route exists
            await sign_in(page, base, f"demo-operator-{HUB}", f"/ui/hubs/{HUB}")
            await page.wait_for_selector("#conn.live", timeout=15_000)
            assert await page.locator("#routes tbody tr").count() == 0
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))

            sim = await new_simulation(
                platform.settings,
                platform.cluster.bootstrap,
                api_url=base,
                api_key="demo-admin",
                days=1,
                seed=5,
            )
            run = asyncio.create_task(sim.run())
            try:
                # a checked-in stop waits, with its carrier's reference and since when
                await page.wait_for_selector("#waiting tbody tr.stop-row", timeout=120_000)
                await page.wait_for_function(
                    "() => [...document.querySelectorAll('#waiting tbody tr td:nth-child(2)')]"
                    ".some((td) => td.textContent.includes('-'))",
                    timeout=15_000,
                )
                await page.wait_for_selector("#routes tbody tr", timeout=120_000)
                await page.wait_for_selector("#map polyline.route", timeout=10_000)
                await route_through_its_stops(page)
                await page.screenshot(path=ARTIFACTS / "dashboard-live.png", full_page=True)
                assert navigations == [], "the dashboard reloaded instead of streaming"
                observed = await run
            finally:
                if not run.done():
                    run.cancel()
            assert observed.routes_planned > 0
            assert await page.locator("#waves-table tbody tr").count() > 0
            await page.screenshot(path=ARTIFACTS / "dashboard-after.png", full_page=True)
            # an unknown hub says so instead of reconnecting for ever
            await page.click("header .signed button")
            await sign_in(page, base, "demo-admin", "/ui/hubs/no-such-hub")
            await page.wait_for_selector("#problem:not([hidden])", timeout=10_000)
            assert "Known hubs" in await page.locator("#problem").inner_text()

            # the city official's page: the month picker, the chart, the PDF, no-data banner
            month = sim.start.strftime("%Y-%m")
            await page.click("header .signed button")
            await sign_in(page, base, f"demo-official-{CITY}", f"/ui/cities/{CITY}")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#chart rect.bar')]"
                ".some((r) => Number(r.getAttribute('height')) > 0)",
                timeout=30_000,
            )
            options = await page.locator("#month option").evaluate_all(
                "(os) => os.map((o) => o.value)"
            )
            assert options == [month]  # the months with data, not the wall clock's
            assert await page.locator("#month").input_value() == month
            assert "Partial month" in await page.locator("#banner").inner_text()  # one day of it
            await page.wait_for_selector("#totals .card", timeout=10_000)
            frame = page.frame_locator("#report")
            await frame.locator("svg").first.wait_for(timeout=30_000)
            await page.screenshot(path=ARTIFACTS / "city-report.png", full_page=True)
            async with page.expect_download() as info:
                await page.click("#pdf")
            download = await info.value
            saved = tmp_path / download.suggested_filename
            await download.save_as(saved)
            assert saved.read_bytes().startswith(b"%PDF")
            await page.goto(f"{base}/ui/cities/{CITY}?month=2031-01")
            await page.wait_for_selector("#banner.bad:not([hidden])", timeout=10_000)
            assert "No data" in await page.locator("#banner").inner_text()
            assert await page.locator("#report-part").is_hidden()
            await page.screenshot(path=ARTIFACTS / "city-no-data.png", full_page=True)

            # the carrier's bookings: newest first, filters, paging, CSV (a carrier that was
            # turned away at least once)
            async with httpx.AsyncClient(base_url=base, headers=ADMIN) as client:
                rejected = (await client.get("/v1/bookings?status=rejected&limit=1000")).json()
            carrier = sorted({b["carrier_id"] for b in rejected})[0]
            await page.click("header .signed button")
            await sign_in(page, base, f"demo-carrier-{carrier}", f"/ui/carriers/{carrier}")
            await page.wait_for_selector("#bookings tbody tr", timeout=15_000)
            slots = await page.locator("#bookings tbody tr td:first-child").all_inner_texts()
            assert slots == sorted(slots, reverse=True)
            await page.select_option("select[name=limit]", "25")
            await page.click("#filters button[type=submit]")
            await page.wait_for_function(
                "() => document.querySelectorAll('#bookings tbody tr').length <= 25"
            )
            if not await page.locator("#older").is_disabled():
                first = await page.locator("#bookings tbody tr").first.inner_text()
                await page.click("#older")
                await page.wait_for_selector("#page:text('page 2')")
                assert await page.locator("#bookings tbody tr").first.inner_text() != first
            await page.select_option("select[name=status]", "rejected")
            await page.click("#filters button[type=submit]")
            await page.wait_for_selector("#page:text('page 1')")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#bookings tbody tr')]"
                ".every((tr) => tr.children[3].textContent === 'rejected')"
            )
            reasons = await page.locator("#bookings tbody tr td:nth-child(5)").all_inner_texts()
            assert all(reasons), reasons  # every rejection with its reason
            async with page.expect_download() as info:
                await page.click("#csv")
            exported = tmp_path / "bookings.csv"
            await (await info.value).save_as(exported)
            text = await asyncio.to_thread(exported.read_text)
            rows = list(csv.DictReader(io.StringIO(text)))
            assert rows and {r["status"] for r in rows} == {"rejected"}
            assert all(r["reason"] for r in rows)
            await page.screenshot(path=ARTIFACTS / "carrier-bookings.png", full_page=True)

            # the API's documentation, from the package (offline)
            await page.goto(f"{base}/docs")
            await page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
            assert await page.locator(".swagger-ui .opblock").count() > 10
            await page.screenshot(path=ARTIFACTS / "docs.png")
            await page.goto(f"{base}/ui/asyncapi")
            assert await page.locator("table.channels tbody tr").count() >= 4

            assert left == [], f"the pages reached outside the machine: {left}"
            assert problems == [], problems
        finally:
            await browser.close()
