"""Reporting's personal data purge (docs/privacy.md), on PostgreSQL and SQLite: a closed
month's stops are gone after the retention, its aggregates stay, and its report is the
same bytes before and after the purge (JSON and CSV), built before the purge or not, and
also when its carrier-days' tours are computed again afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from services.reporting import store
from services.reporting.model import content_without_publication
from services.reporting.privacy import last_purgeable_day
from services.reporting.render import render
from services.reporting.service import ReportingService
from services.runtime.settings import Settings
from tests.integration.test_reporting_scenario import EVENTS
from tests.support.reporting import apply, confirmed, envelope

# October 2026 is closed and more than 30 days past; 20 November is within the retention
NOW = datetime(2026, 12, 15, 9, tzinfo=UTC)
NOVEMBER = confirmed(
    "b-nov",
    carrier="acme",
    depot=(52.40, 13.10),
    stops=[("s1", (52.512345, 13.398765), 2)],
    weight_kg=10,
    volume_m3=0.3,
    slot=datetime(2026, 11, 20, 8, tzinfo=UTC),
)


async def open_service(tmp_path: Path, url: str) -> ReportingService:
    service = ReportingService(
        Settings(data_dir=tmp_path, personal_data_retention_days=30),
        ["127.0.0.1:9"],
        database_url=url,
    )
    await service.migrate()
    for event in [*EVENTS, envelope(NOVEMBER, time=NOVEMBER.slot_start)]:
        assert await apply(service, event)
    return service


@pytest.fixture
async def reporting(tmp_path: Path, database_url: str) -> AsyncIterator[ReportingService]:
    service = await open_service(tmp_path, database_url)
    try:
        yield service
    finally:
        await service.engine.dispose()


async def stops(service: ReportingService) -> dict[str, list[Any]]:
    async with service.sessions() as session:
        rows = await session.execute(select(store.consignment_stops))
        out: dict[str, list[Any]] = {}
        for r in rows:
            out.setdefault(r.booking_id, []).append((r.stop_id, r.lat, r.lon))
        return out


async def aggregates(service: ReportingService) -> list[Any]:
    """Every row of the projection a report is aggregated from."""
    async with service.sessions() as session:
        out: list[Any] = []
        for table in (store.consignments, store.routes, store.route_consignments):
            out.append(sorted(tuple(r) for r in await session.execute(select(table))))
        return out


async def closed_report(service: ReportingService) -> dict[str, bytes]:
    report = await service.report("berlin", "2026-10", now=NOW)
    return {
        "json": render(report, "json"),
        "csv": render(report, "csv"),
        "content": content_without_publication(report),
    }


async def test_a_closed_months_report_is_byte_identical_after_the_purge(
    reporting: ReportingService,
) -> None:
    before = await closed_report(reporting)
    kept = await aggregates(reporting)
    assert {"b1", "b2", "b-nov"} <= set(await stops(reporting))

    dry = await reporting.purge_personal_data(NOW, dry_run=True)
    assert dry["consignment_stops (deleted)"] == 7  # October's: b1 2, b2, b3, b4, b6, b7
    assert await aggregates(reporting) == kept and "b1" in await stops(reporting)
    assert await reporting.purge_personal_data(NOW) == dry

    # October's stops are gone; November's day is within the retention: kept
    assert set(await stops(reporting)) == {"b-nov"}
    assert await aggregates(reporting) == kept
    assert await closed_report(reporting) == before
    versions = await reporting.report_versions("berlin", "2026-10")
    assert [v["number"] for v in versions] == [1]

    # the carrier-days computed again (as after new tour parameters) keep their tours
    async with reporting.sessions() as session, session.begin():
        await session.execute(update(store.consignments).values(derived_params=None))
    assert await closed_report(reporting) == before
    assert await reporting.purge_personal_data(NOW) == {"consignment_stops (deleted)": 0}


async def test_the_purge_computes_what_a_report_built_later_needs(
    tmp_path: Path, database_url: str
) -> None:
    """Purged before any report was built: the report is the one the unpurged
    projection gives (a SQLite twin of the same events is the reference)."""
    purged = await open_service(tmp_path / "purged", database_url)
    twin = await open_service(tmp_path / "twin", f"sqlite:///{tmp_path / 'twin.db'}")
    try:
        await purged.purge_personal_data(NOW)
        assert set(await stops(purged)) == {"b-nov"}
        assert await closed_report(purged) == await closed_report(twin)
    finally:
        await purged.engine.dispose()
        await twin.engine.dispose()


def test_only_days_of_closed_months_past_the_retention_are_purged() -> None:
    berlin = "Europe/Berlin"
    # 1 day of retention: 31 October ended, but October closes 2 days after its end
    assert last_purgeable_day(
        berlin, datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 2, 9, tzinfo=UTC)
    ) == date(2026, 9, 30)
    assert last_purgeable_day(
        berlin, datetime(2026, 11, 3, 9, tzinfo=UTC), datetime(2026, 11, 4, 9, tzinfo=UTC)
    ) == date(2026, 10, 31)
    # 30 days: the retention is what holds them back
    assert last_purgeable_day(berlin, datetime(2026, 11, 15, 9, tzinfo=UTC), NOW) == date(
        2026, 11, 14
    )
