"""Nothing is counted twice (hypothesis): whatever the interleaving of the two topics and
however often a consumer is rewound and redelivers records, the month's report equals the
report of each event applied once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.topics import BOOKING_EVENTS
from services.reporting.model import to_json
from services.reporting.service import ReportingService
from services.runtime.settings import Settings
from tests.integration.test_reporting_scenario import EVENTS
from tests.support.reporting import apply

BOOKING_SIDE = [e for e in EVENTS if e.data.topic == BOOKING_EVENTS.name]
DISPATCH_SIDE = [e for e in EVENTS if e.data.topic != BOOKING_EVENTS.name]


@st.composite
def deliveries(draw, events: list) -> list:
    """One partition's records in order, with rewinds: after record i the consumer may be
    sent back to an earlier offset j (a rebalance before the commit) and read on again."""
    out, i = [], 0
    rewinds = 0
    while i < len(events):
        out.append(events[i])
        if rewinds < 3 and draw(st.booleans()):
            rewinds += 1
            i = draw(st.integers(0, i)) - 1  # the next record read is events[j] again
        i += 1
    return out


@st.composite
def interleavings(draw) -> list:
    a, b = draw(deliveries(BOOKING_SIDE)), draw(deliveries(DISPATCH_SIDE))
    picks = draw(st.permutations([0] * len(a) + [1] * len(b)))
    ia, ib = iter(a), iter(b)
    return [next(ia) if p == 0 else next(ib) for p in picks]


async def _report(tmp: Path, events: list) -> bytes:
    service = ReportingService(
        Settings(data_dir=tmp),
        ["127.0.0.1:9"],
        database_url=f"sqlite:///{tmp}/{uuid.uuid4().hex}.db",
    )
    await service.migrate()
    try:
        for event in events:
            await apply(service, event)
        # a fixed clock: the published version carries its publication time
        return to_json(
            await service.report("berlin", "2026-10", now=datetime(2026, 11, 21, tzinfo=UTC))
        )
    finally:
        await service.engine.dispose()


async def test_redeliveries_and_interleavings_change_nothing(tmp_path: Path) -> None:
    once = await _report(tmp_path, EVENTS)
    seen: list[int] = []

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(stream=interleavings())
    def check(stream: list) -> None:
        seen.append(len(stream))
        assert asyncio.run(_report(tmp_path, stream)) == once

    # hypothesis drives a sync function: run it in a worker thread with its own event loop
    await asyncio.to_thread(check)
    assert max(seen) > len(EVENTS)  # some examples did redeliver
