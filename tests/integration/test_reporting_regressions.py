"""The bugs issue 15 found by an independent hand computation, each pinned by a test that
failed before its fix (see the commit that added it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.reporting.render import render
from services.reporting.service import ReportingService
from services.runtime.settings import Settings
from tests.support.reporting import apply, completed, confirmed, envelope, planned

T = datetime(2026, 10, 14, 5, tzinfo=UTC)
CLOSED = datetime(2026, 11, 21, tzinfo=UTC)
DEPOT = (52.40, 13.10)


@pytest.fixture
async def reporting(tmp_path: Path) -> AsyncIterator[ReportingService]:
    service = ReportingService(
        Settings(data_dir=tmp_path), ["127.0.0.1:9"], database_url=f"sqlite:///{tmp_path}/r.db"
    )
    await service.migrate()
    try:
        yield service
    finally:
        await service.engine.dispose()


async def test_a_stop_planned_again_after_a_failure_counts_its_parcels_and_stop_once(
    reporting: ReportingService,
) -> None:
    """Before: `parcels` and `stops` summed every route that carried a stop, so a stop
    that failed and was planned again counted twice (95 parcels expected, 100 reported)."""
    booking = confirmed(
        "b1",
        carrier="acme",
        depot=DEPOT,
        stops=[("s1", (52.52, 13.40), 5), ("s2", (52.53, 13.38), 3)],
        weight_kg=20,
        volume_m3=0.5,
    )
    first = planned(
        "r1", vehicle="e_cargo_bike", km=8.0, stops=[(booking, "s1", 12), (booking, "s2", 8)]
    )
    again = planned("r2", vehicle="e_cargo_bike", km=6.0, stops=[(booking, "s1", 12)])
    for event in (
        envelope(booking, time=T),
        envelope(first, time=T.replace(hour=8)),
        envelope(
            completed(first, at=T.replace(hour=11), actual_km=8.1, energy_kwh=None, failed={"s1"}),
            time=T.replace(hour=11),
        ),
        envelope(again, time=T.replace(hour=13)),
        envelope(
            completed(again, at=T.replace(hour=15), actual_km=6.2, energy_kwh=None),
            time=T.replace(hour=15),
        ),
    ):
        assert await apply(reporting, event)
    report = await reporting.report("berlin", "2026-10", now=CLOSED)
    totals = report.totals
    assert totals.parcels == 8  # 5 + 3, not 5 + 3 + 5
    assert totals.stops == 2 and totals.stop_visits == 3
    assert totals.delivered_stops == 2
    (carrier,) = report.by_carrier
    assert carrier.parcels == 8 and carrier.stops == 2


async def test_small_slices_keep_their_nox_and_pm(reporting: ReportingService) -> None:
    """Before: NOx was rounded to 0.1 g and PM2.5 to 0.01 g per row, which lost up to half
    of a small slice's value. Every row must be within 0.1 % of km x factor."""
    events = []
    for i, carrier in enumerate(("acme", "bolt", "citypost")):
        booking = confirmed(
            f"b{i}",
            carrier=carrier,
            depot=(52.5350 + 0.001 * i, 13.3400),  # a depot next to the hub: few km avoided
            stops=[("s1", (52.5365, 13.3420), 1)],
            weight_kg=2,
            volume_m3=0.01,
        )
        route = planned(f"r{i}", vehicle="e_cargo_bike", km=0.4, stops=[(booking, "s1", 2)])
        events += [envelope(booking, time=T), envelope(route, time=T.replace(hour=9))]
    for event in events:
        assert await apply(reporting, event)
    report = await reporting.report("berlin", "2026-10", now=CLOSED)
    factors = {f.key: f for f in report.factors.table}
    nox = factors["pollutant.diesel_van.nox_g_per_km"].value
    pm = factors["pollutant.diesel_van.pm25_g_per_km"].value
    for row in report.by_carrier:
        km = row.diesel_van_km_avoided
        assert row.nox_avoided_g == pytest.approx(km * nox, rel=1e-3), row
        assert row.pm25_avoided_g == pytest.approx(km * pm, rel=1e-3), row
        city = row.diesel_van_km_avoided_in_city
        assert row.nox_avoided_in_city_g == pytest.approx(city * nox, rel=1e-3), row


async def test_factor_values_print_with_every_significant_digit(
    reporting: ReportingService,
) -> None:
    """Before: the HTML and PDF printed every factor with three decimals: PM2.5 0.0045 g/km
    appeared as 0.004."""
    booking = confirmed(
        "b1",
        carrier="acme",
        depot=DEPOT,
        stops=[("s1", (52.52, 13.40), 1)],
        weight_kg=2,
        volume_m3=0.1,
    )
    await apply(reporting, envelope(booking, time=T))
    report = await reporting.report("berlin", "2026-10", now=CLOSED)
    pm = next(f for f in report.factors.table if f.key == "pollutant.diesel_van.pm25_g_per_km")
    html = render(report, "html").decode()
    assert f">{pm.value}<" in html.replace(",", "")
    assert str(pm.value).startswith("0.00") and len(str(pm.value)) > 5
