"""The pages in a real browser: Debian's Chromium driven by Playwright.

While the simulation runs, the operator dashboard must show a planned route without a
reload (SSE); afterwards the city page must show the report's chart and download its
PDF; and a page asked for without a key is refused. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from services.app.demo import demo_settings, new_simulation
from services.app.platform import Platform
from services.runtime.kafka import KafkaCluster
from services.runtime.settings import Settings
from services.web import routers as web_routers
from tests.e2e.conftest import ARTIFACTS, CHROMIUM_ARGS

HUB, CITY = "ber-westhafen", "berlin"


@pytest.fixture
async def platform(settings: Settings, topics: list[str], kafka_cluster) -> AsyncIterator[Platform]:
    s = demo_settings(settings, settings.data_dir).model_copy(update={"http_port": 0})
    cluster = KafkaCluster(s, bootstrap=kafka_cluster.bootstrap, embedded=kafka_cluster.embedded)
    p = await Platform(s, cluster=cluster, extra_routers=web_routers(s)).start()
    try:
        yield p
    finally:
        await p.stop()


async def test_pages_in_chromium(platform: Platform, chromium: Path, tmp_path: Path) -> None:
    base = platform.base_url
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})

            # no key: refused, before anything is shown
            refused = await page.goto(f"{base}/ui/hubs/{HUB}")
            assert refused is not None and refused.status == 401
            wrong = await page.goto(f"{base}/ui/hubs/{HUB}?api_key=demo-carrier-parcelco")
            assert wrong is not None and wrong.status == 403

            # the dashboard, opened before any route exists
            await page.goto(f"{base}/ui/hubs/{HUB}?api_key=demo-operator-{HUB}")
            await page.wait_for_selector("#conn.live", timeout=15_000)
            assert await page.locator("#routes tbody tr").count() == 0
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))

            sim = await new_simulation(
                platform.settings,
                platform.cluster.bootstrap,
                api_url=str(platform.base_url),
                api_key="demo-admin",
                days=1,
                seed=5,
            )
            run = asyncio.create_task(sim.run())
            try:
                await page.wait_for_selector("#routes tbody tr", timeout=120_000)
                await page.wait_for_selector("#map polyline.route", timeout=10_000)
                await page.screenshot(path=ARTIFACTS / "dashboard-live.png", full_page=True)
                assert navigations == [], "the dashboard reloaded instead of streaming"
                observed = await run
            finally:
                if not run.done():
                    run.cancel()
            assert observed.routes_planned > 0
            await page.screenshot(path=ARTIFACTS / "dashboard-after.png", full_page=True)

            # the city official's page: chart from the report, PDF download
            month = sim.start.strftime("%Y-%m")
            await page.goto(f"{base}/ui/cities/{CITY}?api_key=demo-official-{CITY}&month={month}")
            await page.wait_for_function(
                "[...document.querySelectorAll('#chart rect.bar')]"
                ".some((r) => Number(r.getAttribute('height')) > 0)",
                timeout=30_000,
            )
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

            # the carrier's bookings
            await page.goto(f"{base}/ui/carriers/parcelco?api_key=demo-carrier-parcelco")
            await page.wait_for_selector("#bookings tbody tr", timeout=15_000)
            await page.screenshot(path=ARTIFACTS / "carrier-bookings.png", full_page=True)
        finally:
            await browser.close()
