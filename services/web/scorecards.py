"""The operators' scorecard page: ``/ui/hubs/{hub}/scorecards`` (a month of every
carrier's figures at the hub, a table and a stacked bar chart). The page is a shell; the
browser reads ``GET /v1/scorecards`` with the signed-in session, so it shows exactly
what the API lets this key see."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import HTMLResponse

from services.runtime.auth import Principal, forbid
from services.web.layout import page
from services.web.pages import signed_in

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

BODY = """
<form class="month" id="month-form"><label>Month <input type="month" id="month"
 name="month" required></label><button>Show</button></form>
<p id="banner" class="banner" role="status" hidden></p>
<figure><svg id="chart" viewBox="0 0 640 240" role="img"
 aria-label="each carrier's bookings by outcome"></svg>
<figcaption><span class="k on-time">■</span> on time · <span class="k late">■</span> late ·
<span class="k no-show">■</span> no-show · <span class="k cancelled">■</span> cancelled ·
<span class="k late-cancel">■</span> cancelled late · <span class="k pending">■</span>
pending</figcaption></figure>
<table id="scorecards"><thead><tr><th>carrier</th><th>bookings</th><th>on time</th>
<th>late</th><th>no-shows</th><th>cancelled</th><th>cancelled late</th><th>pending</th>
<th>reschedules (late)</th><th>on-time rate</th><th>no-show rate</th></tr></thead>
<tbody></tbody></table>
<p class="hint">A booking counts in the month its slot starts in, hub time; on time: checked
in no later than the slot's start; rates leave out what is not settled (docs/scorecards.md).
</p>"""


def scorecard_router(principal: Callable[..., Any]) -> APIRouter:
    ui = APIRouter(prefix="/ui", include_in_schema=False)

    @ui.get("/hubs/{hub_id}/scorecards", response_class=HTMLResponse)
    async def scorecard_page(
        hub_id: str, month: str | None = None, who: Principal = Depends(signed_in)
    ) -> HTMLResponse:
        if not who.may_operate_hub(hub_id):
            raise forbid(f"this key does not operate hub {hub_id}")
        if month is not None and not MONTH.match(month):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "month must look like YYYY-MM")
        data = {"hub": hub_id, "month": month or f"{datetime.now(UTC):%Y-%m}"}
        return page(
            f"Carrier scorecards · {hub_id}",
            BODY,
            script="scorecards.js",
            data=data,
            principal=who,
        )

    return ui
