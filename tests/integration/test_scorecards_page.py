"""The operators' scorecard page in a real browser (Debian's Chromium driven by
Playwright): the page's script reads ``GET /v1/scorecards`` with the session and draws
the table and the chart. The browser talks to the HTTP app in process (every request it
makes goes to the app, served on a loopback port; anything else fails the test), over
the booking service on a real Kafka and both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Route, async_playwright

from services.booking.service import BookingService
from tests.e2e.conftest import ARTIFACTS, CHROMIUM_ARGS, chromium
from tests.integration.test_scorecards import MONTH, book, local, people_app
from tests.support.carrier import Carrier, TopicReader
from tests.support.hubs import TEST_HUB
from tests.support.waiting import eventually

__all__ = ["chromium", "people_app"]  # the fixtures


@pytest.fixture
async def served(people_app: Any) -> AsyncIterator[str]:
    """The app on a loopback port (its base URL)."""
    server = uvicorn.Server(
        uvicorn.Config(people_app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, what="the HTTP server listening")
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_the_page_draws_the_months_scorecards(
    booking: BookingService,
    carrier: Carrier,
    outcomes: TopicReader,
    served: str,
    chromium: Path,
) -> None:
    for reference, hour in (("p1", 9), ("p2", 10)):
        await book(outcomes, carrier, reference, local(hour), local(6))
    cancelled = await carrier.cancel("p2", hub_id=TEST_HUB, time=local(6, 5))
    await outcomes.wait_for(
        lambda r: any(e.get("causationid") == cancelled["id"] for e in r.events),
        what="the cancellation's answer",
    )
    elsewhere: list[str] = []

    async def offline(route: Route) -> None:
        if route.request.url.startswith(served + "/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    async with async_playwright() as pw:
        chrome = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = await chrome.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.route("**/*", offline)
            await page.goto(f"{served}/ui/hubs/{TEST_HUB}/scorecards?month={MONTH}")
            await page.fill("#key", "k-op")  # sent to sign in first, then back
            await page.click("form.signin button")
            await page.wait_for_selector("#scorecards tbody tr")
            cells = await page.locator("#scorecards tbody tr td").all_inner_texts()
            # acme: 2 bookings, one cancelled in time, one to come
            assert cells[:8] == ["acme", "2", "0", "0", "0", "1", "0", "1"], cells
            assert cells[9:] == [
                "\u2013",
                "\u2013",
            ]  # an en dash  # no rate without anything settled
            assert await page.locator("#chart rect").count() == 2  # cancelled, pending
            assert "not settled yet" in await page.locator("#banner").inner_text()
            await page.screenshot(path=str(ARTIFACTS / "scorecards.png"), full_page=True)
            assert problems == [] and elsewhere == []
        finally:
            await chrome.close()
