"""A small month in Berlin whose expected baseline, actual and saving are computed here
from the formulas of docs/methodology.md and the factor file - not from the program's
output - on PostgreSQL and SQLite."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from services.reporting.factors import DEFAULT_FILE
from services.reporting.render import render
from services.reporting.report import UnknownCity, to_json
from services.reporting.service import ReportingService
from services.runtime.settings import Settings
from tests.support.reporting import apply, cancelled, completed, confirmed, envelope, planned

F = yaml.safe_load(DEFAULT_FILE.read_text())["factors"]


def v(key: str) -> float:
    return F[key]["value"]


CIRC = v("road.circuity_factor")
HUB = (52.5380, 13.3410)


def gc(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine, written out again here on purpose."""
    r = 6371.0088
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    return (
        2
        * r
        * math.asin(
            math.sqrt(math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2)
        )
    )


def diesel_kg(km: float) -> float:
    return km * v("vehicle.diesel_van.l_per_100km") / 100 * v("diesel.wtw_kgco2e_per_l")


T = datetime(2026, 10, 14, 5, tzinfo=UTC)
DEPOT_A, DEPOT_B = (52.40, 13.10), (52.45, 13.60)
S1, S2, S4, S7 = (52.45, 13.20), (52.52, 13.40), (52.56, 13.30), (52.53, 13.36)
B2_STOP = (52.55, 13.45)

B1 = confirmed(
    "b1",
    carrier="acme",
    depot=DEPOT_A,
    stops=[("s1", S1, 2), ("s2", S2, 1)],
    weight_kg=30,
    volume_m3=1,
)
B2 = confirmed(
    "b2", carrier="bolt", depot=DEPOT_B, stops=[("s1", B2_STOP, 4)], weight_kg=1500, volume_m3=2
)
B3 = confirmed(
    "b3", carrier="acme", depot=DEPOT_A, stops=[("s1", S1, 1)], weight_kg=5, volume_m3=0.5
)
B4 = confirmed(
    "b4", carrier="bolt", depot=DEPOT_B, stops=[("s4", S4, 1)], weight_kg=5, volume_m3=0.2
)
B6 = confirmed(
    "b6", carrier="acme", depot=DEPOT_A, stops=[("s1", S2, 1)], weight_kg=5, volume_m3=0.2
)
B7 = confirmed(
    "b7", carrier="citypost", depot=DEPOT_A, stops=[("s7", S7, 3)], weight_kg=40, volume_m3=0.4
)

R1 = planned(
    "r1",
    vehicle="e_cargo_bike",
    km=14.0,
    stops=[(B1, "s1", 20.0), (B1, "s2", 10.0), (B4, "s4", 5.0)],
)
R2 = planned("r2", vehicle="diesel_van", km=22.0, stops=[(B2, "s1", 1500.0)])
R4 = planned("r4", vehicle="e_cargo_bike", km=9.0, stops=[(B6, "s1", 5.0)])
R5 = planned("r5", vehicle="e_van", km=11.0, stops=[(B7, "s7", 40.0)])

EVENTS = [
    envelope(B1, time=T),
    envelope(B2, time=T),
    envelope(B3, time=T),
    envelope(B4, time=T),
    envelope(B6, time=T),
    envelope(B7, time=T),
    envelope(cancelled(B3), time=T.replace(hour=6)),
    envelope(R1, time=datetime(2026, 10, 14, 9, tzinfo=UTC)),
    envelope(
        completed(
            R1,
            at=datetime(2026, 10, 14, 15, tzinfo=UTC),
            actual_km=15.2,
            energy_kwh=0.5,
            failed={"s4"},
        ),
        time=datetime(2026, 10, 14, 15, 1, tzinfo=UTC),
    ),
    envelope(R2, time=datetime(2026, 10, 20, 6, tzinfo=UTC)),
    # 23:30 UTC on 31 Oct is 00:30 on 1 Nov in Berlin: November's
    envelope(R4, time=datetime(2026, 10, 31, 20, tzinfo=UTC)),
    envelope(
        completed(
            R4, at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC), actual_km=9.5, energy_kwh=None
        ),
        time=datetime(2026, 10, 31, 23, 31, tzinfo=UTC),
    ),
    # 22:30 UTC on 30 Sep is 00:30 on 1 Oct in Berlin (summer time): October's
    envelope(R5, time=datetime(2026, 9, 30, 22, 30, tzinfo=UTC)),
]


def expected() -> dict[str, dict[str, float]]:
    """Per carrier: baseline, depot-hub and last-mile kg and the diesel km, from the formulas."""

    def tour(depot, *stops):
        pts = [depot, *stops, depot]
        return CIRC * sum(gc(a, b) for a, b in pairwise(pts))

    base = {
        "b1": tour(DEPOT_A, S1, S2),
        "b2": 2 * tour(DEPOT_B, B2_STOP),
        "b4": tour(DEPOT_B, S4),
        "b7": tour(DEPOT_A, S7),
    }
    trips = {"b1": 1, "b2": 2, "b4": 1, "b7": 1}
    depot_of = {"b1": DEPOT_A, "b2": DEPOT_B, "b4": DEPOT_B, "b7": DEPOT_A}
    trunk = {b: trips[b] * 2 * CIRC * gc(depot_of[b], HUB) for b in base}
    grid = v("grid.DE.gco2e_per_kwh") / 1000
    # r1: 0.5 kWh measured at the battery, shared by weight x distance
    act = {"b1": 20 * CIRC * gc(HUB, S1) + 10 * CIRC * gc(HUB, S2), "b4": 5 * CIRC * gc(HUB, S4)}
    share_b1 = act["b1"] / (act["b1"] + act["b4"])
    r1_kg = 0.5 * v("electricity.charging_loss_factor") * grid
    last_mile = {
        "b1": share_b1 * r1_kg,
        "b4": (1 - share_b1) * r1_kg,
        "b2": diesel_kg(22.0),
        "b7": 11.0 * v("vehicle.e_van.kwh_per_km") * grid,
    }
    diesel_lm = {"b1": 0.0, "b4": 0.0, "b2": 22.0, "b7": 0.0}
    carriers = {"acme": ["b1"], "bolt": ["b2", "b4"], "citypost": ["b7"]}
    out = {}
    for carrier, bookings in carriers.items():
        out[carrier] = {
            "baseline_kgco2e": sum(diesel_kg(base[b]) for b in bookings),
            "depot_hub_kgco2e": sum(diesel_kg(trunk[b]) for b in bookings),
            "last_mile_kgco2e": sum(last_mile[b] for b in bookings),
            "diesel_van_km_avoided": sum(base[b] - trunk[b] - diesel_lm[b] for b in bookings),
        }
        o = out[carrier]
        o["actual_kgco2e"] = o["depot_hub_kgco2e"] + o["last_mile_kgco2e"]
        o["saving_kgco2e"] = o["baseline_kgco2e"] - o["actual_kgco2e"]
    return out


@pytest.fixture
async def reporting(tmp_path: Path, database_url: str) -> AsyncIterator[ReportingService]:
    service = ReportingService(
        Settings(data_dir=tmp_path), ["127.0.0.1:9"], database_url=database_url
    )
    await service.migrate()
    try:
        yield service
    finally:
        await service.engine.dispose()


async def test_small_month_matches_the_formulas(reporting: ReportingService) -> None:
    for event in EVENTS:
        assert await apply(reporting, event)
    report = await reporting.report("berlin", "2026-10", now=datetime(2026, 11, 21, tzinfo=UTC))
    want = expected()
    carriers = {row["carrier_id"]: row for row in report["by_carrier"]}
    assert set(carriers) == set(want)
    for carrier, figures in want.items():
        for field, value in figures.items():
            # metres and watt-hours are whole numbers in the projection: a few grams of slack
            assert carriers[carrier][field] == pytest.approx(value, abs=0.01), (carrier, field)
    totals = report["totals"]
    for field in ("baseline_kgco2e", "actual_kgco2e", "saving_kgco2e", "diesel_van_km_avoided"):
        assert totals[field] == pytest.approx(sum(w[field] for w in want.values()), abs=0.02)
    avoided = sum(w["diesel_van_km_avoided"] for w in want.values())
    assert totals["nox_avoided_g"] == pytest.approx(
        avoided * v("pollutant.diesel_van.nox_g_per_km"), abs=0.1
    )
    assert totals["routes"] == 3 and totals["consignments"] == 4  # r4 is November's, b3 cancelled
    assert (
        totals["stops"] == 5 and totals["delivered_stops"] == 2
    )  # r1: s4 failed; r2, r5 planned only
    assert report["status"] == "closed"
    # r1 ran 15.2 km (completed), r2 22 km and r5 11 km from the plan
    assert report["data_basis"]["last_mile_km_from_actual_share"] == pytest.approx(
        15.2 / 48.2, abs=1e-4
    )
    daily = {d["date"]: d for d in report["daily"]}
    assert daily["2026-10-01"]["stops"] == 1 and daily["2026-10-14"]["stops"] == 3
    assert len(daily) == 31
    hubs = {row["hub_id"] for row in report["by_hub"]}
    assert hubs == {"ber-westhafen"}
    assert {row["vehicle_type"] for row in report["by_vehicle_type"]} == {
        "e_cargo_bike",
        "diesel_van",
        "e_van",
    }
    keys = {row["key"] for row in report["factors"]["table"]}
    assert {"diesel.wtw_kgco2e_per_l", "grid.DE.gco2e_per_kwh"} <= keys


async def test_redelivered_and_resent_events_count_once(reporting: ReportingService) -> None:
    for event in EVENTS:
        await apply(reporting, event)
    first = to_json(await reporting.report("berlin", "2026-10"))
    # the same records again (Kafka redelivery): the inbox stops them
    assert not any([await apply(reporting, event) for event in EVENTS])
    # the same facts in new envelopes (a producer's retry after a lost ack)
    for payload in (B1, B2, R1, R2):
        assert await apply(reporting, envelope(payload, time=T))
    again = json.loads(to_json(await reporting.report("berlin", "2026-10")))
    before = json.loads(first)
    assert again["totals"] == before["totals"]
    assert again["by_carrier"] == before["by_carrier"]
    assert again["inputs"]["events"] == before["inputs"]["events"] + 4  # the digest names them


async def test_a_closed_month_is_byte_identical_and_formats_render(
    reporting: ReportingService,
) -> None:
    for event in reversed(EVENTS[7:]):  # routes before bookings: the projection does not mind
        await apply(reporting, event)
    for event in EVENTS[:7]:
        await apply(reporting, event)
    a = to_json(await reporting.report("berlin", "2026-10"))
    b = to_json(await reporting.report("berlin", "2026-10"))
    assert a == b
    report = json.loads(a)
    csv = render(report, "csv").decode()
    assert "factor,grid.DE.gco2e_per_kwh,value,381" in csv and "methodology,1,step" in csv
    html = render(report, "html").decode()
    assert html.count("<svg") == 2 and "Methodology" in html and "Our World in Data" in html
    pdf = render(report, "pdf")
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    # the documents are reproducible too (no timestamps, stable SVG ids)
    assert render(report, "pdf") == pdf and render(report, "html").decode() == html


async def test_unknown_city_and_bad_month_are_refused(reporting: ReportingService) -> None:
    await apply(reporting, EVENTS[0])
    with pytest.raises(UnknownCity, match="paris"):
        await reporting.report("paris", "2026-10")
    with pytest.raises(ValueError, match="YYYY-MM"):
        await reporting.report("berlin", "2026-13")
    empty = await reporting.report("berlin", "2025-01")
    assert empty["totals"]["baseline_kgco2e"] == 0 and empty["inputs"]["events"] == 0


async def test_a_city_override_file_changes_that_citys_report_only(tmp_path: Path) -> None:
    override = tmp_path / "factors.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "version": "berlin-green-2026",
                "cities": {
                    "berlin": {
                        "grid.DE.gco2e_per_kwh": {
                            "value": 0,
                            "unit": "gCO2e/kWh",
                            "source": "test: a 100 % renewable supply contract",
                            "year": 2026,
                            "confidence": "high",
                        }
                    }
                },
            }
        )
    )
    settings = Settings(data_dir=tmp_path, emission_factors_file=override)
    service = ReportingService(settings, ["127.0.0.1:9"], database_url=f"sqlite:///{tmp_path}/o.db")
    await service.migrate()
    for event in EVENTS:
        await apply(service, event)
    report = await service.report("berlin", "2026-10")
    await service.engine.dispose()
    vehicles = {row["vehicle_type"]: row for row in report["by_vehicle_type"]}
    assert (
        vehicles["e_cargo_bike"]["last_mile_kgco2e"] == 0
        and vehicles["e_van"]["last_mile_kgco2e"] == 0
    )
    assert vehicles["diesel_van"]["last_mile_kgco2e"] == pytest.approx(diesel_kg(22.0), abs=1e-3)
    grid = next(f for f in report["factors"]["table"] if f["key"] == "grid.DE.gco2e_per_kwh")
    assert grid["overridden"] and grid["value"] == 0
    assert report["factors"]["version"].endswith("+berlin-green-2026")
