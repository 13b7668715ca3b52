"""A small month in Berlin whose every figure is computed here again, by hand, from the
rules of docs/methodology.md and the values of the factor file - not from the program's
code (haversine, tours, polygon shares and allocation are written out anew) - and compared
with the report, on PostgreSQL and SQLite.

The scenario is small enough for the methodology's tours to be the shortest ones, which
this computation finds by trying every order."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from matplotlib.path import Path as MplPath

from contracts.vehicle_energy import DATA_FILE as VEHICLE_FILE
from services.reporting.factors import DEFAULT_FILE
from services.reporting.model import to_json
from services.reporting.render import render
from services.reporting.report import UnknownCity
from services.reporting.service import ReportingService
from services.runtime.settings import Settings
from tests.support.reporting import apply, cancelled, completed, confirmed, envelope, planned

RAW = yaml.safe_load(DEFAULT_FILE.read_text())
SHARED = yaml.safe_load(VEHICLE_FILE.read_text())["vehicles"]


def factor_values(level: dict[str, str] | None = None) -> dict[str, float]:
    """key -> value from the factor file (Berlin: global values, no city override), with
    some keys at their low or high end."""
    level = level or {}
    out = {}
    for key, f in RAW["factors"].items():
        out[key] = f.get(level.get(key, "value"), f["value"]) if key in level else f["value"]
    for vehicle, e in SHARED.items():
        key = f"vehicle.{vehicle}.battery_kwh_per_km"
        out[key] = e[{"low": "low", "high": "high"}.get(level.get(key, ""), "central")]
    return out


V = factor_values()


def v(key: str) -> float:
    return V[key]


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
    return (
        km
        * v("vehicle.diesel_van.l_per_100km")
        / 100
        * (v("diesel.ttw_kgco2e_per_l") + v("diesel.wtt_kgco2e_per_l"))
    )


POLYGON = RAW["boundaries"]["berlin"]["polygon"]
_MEAN_LAT = sum(p[0] for p in POLYGON) / len(POLYGON)
_SCALE = math.cos(math.radians(_MEAN_LAT))
_PATH = MplPath([(lon * _SCALE, lat) for lat, lon in POLYGON])


def inside_share(a: tuple[float, float], b: tuple[float, float], n: int = 20000) -> float:
    """The share of the straight leg inside the boundary, by sampling its midpoints
    (matplotlib's point-in-polygon, not the program's clipping)."""
    points = [
        ((a[1] + (b[1] - a[1]) * (i + 0.5) / n) * _SCALE, a[0] + (b[0] - a[0]) * (i + 0.5) / n)
        for i in range(n)
    ]
    return float(_PATH.contains_points(points).sum()) / n


def shortest_tour(depot, stops) -> list[tuple[float, float]]:
    """The shortest closed tour depot -> stops -> depot, trying every order."""
    best = min(
        itertools.permutations(stops),
        key=lambda order: sum(gc(x, y) for x, y in pairwise([depot, *order, depot])),
    )
    return [depot, *best, depot]


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


def expected(values: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Per carrier, the month's figures computed by hand from docs/methodology.md."""
    f = values or V
    c = f["road.circuity_factor"]
    wtw = f["diesel.ttw_kgco2e_per_l"] + f["diesel.wtt_kgco2e_per_l"]
    l100 = f["vehicle.diesel_van.l_per_100km"]

    def dkg(km: float) -> float:
        return km * l100 / 100 * wtw

    def tour_km(points):
        return sum(gc(x, y) for x, y in pairwise(points))

    def city_km(points):
        return sum(gc(x, y) * inside_share(x, y) for x, y in pairwise(points))

    # --- baseline: tours per carrier and local day (all slots on 14 Oct, Berlin time) ---
    # acme: b1 (s1: 2 of 3 parcels, s2: 1) and b6 (one stop at S2; b3 is cancelled); one
    # tour, shared by weight x distance from the depot; b6 is November's (route r4)
    acme = shortest_tour(DEPOT_A, [S1, S2])
    w_b1 = 30 * 2 / 3 * gc(DEPOT_A, S1) + 30 * 1 / 3 * gc(DEPOT_A, S2)
    share_b1 = w_b1 / (w_b1 + 5 * gc(DEPOT_A, S2))
    # bolt: b2 is 1.5 vans (1500 kg): one full van to its stop and back, the remaining
    # 500 kg tour with b4's stop
    dedicated = [DEPOT_B, B2_STOP, DEPOT_B]
    bolt = shortest_tour(DEPOT_B, [B2_STOP, S4])
    w_b2, w_b4 = 500 * gc(DEPOT_B, B2_STOP), 5 * gc(DEPOT_B, S4)
    share_b2 = w_b2 / (w_b2 + w_b4)
    citypost = [DEPOT_A, S7, DEPOT_A]
    gc_km = {
        "b1": share_b1 * tour_km(acme),
        "b2": tour_km(dedicated) + share_b2 * tour_km(bolt),
        "b4": (1 - share_b2) * tour_km(bolt),
        "b7": tour_km(citypost),
    }
    gc_city = {
        "b1": share_b1 * city_km(acme),
        "b2": city_km(dedicated) + share_b2 * city_km(bolt),
        "b4": (1 - share_b2) * city_km(bolt),
        "b7": city_km(citypost),
    }
    trips = {"b1": share_b1, "b2": 1 + share_b2, "b4": 1 - share_b2, "b7": 1.0}
    # --- depot -> hub: as many round trips as the van's capacity requires ---
    trunk_trips = {"b1": 1, "b2": 2, "b4": 1, "b7": 1}
    depot_of = {"b1": DEPOT_A, "b2": DEPOT_B, "b4": DEPOT_B, "b7": DEPOT_A}
    trunk_gc = {b: trunk_trips[b] * 2 * gc(depot_of[b], HUB) for b in gc_km}
    trunk_city = {b: trunk_gc[b] * inside_share(depot_of[b], HUB) for b in gc_km}
    # --- last mile ---
    grid = f["grid.DE.location_gco2e_per_kwh"] / (1 - f["grid.DE.loss_share"]) / 1000
    loss = f["electricity.charging_loss_factor"]
    a_b1 = 20 * gc(HUB, S1) + 10 * gc(HUB, S2)
    a_b4 = 5 * gc(HUB, S4)
    r1_kwh = 0.5 * loss  # measured at the battery
    r5_kwh = 11.0 * c / CIRC * f["vehicle.e_van.battery_kwh_per_km"] * loss  # planned km
    r2_km = 22.0 * c / CIRC  # planned: scales with the circuity under test
    kwh = {
        "b1": a_b1 / (a_b1 + a_b4) * r1_kwh,
        "b4": a_b4 / (a_b1 + a_b4) * r1_kwh,
        "b2": 0.0,
        "b7": r5_kwh,
    }
    diesel_lm = {"b1": 0.0, "b4": 0.0, "b2": r2_km, "b7": 0.0}
    # --- hub operation: no meter reading, so the default for every day of the month,
    # allocated by the parcels the hub handled (first routed) in October ---
    hub_kwh = f["hub.default_kwh_per_day"] * 31
    parcels = {"b1": 3, "b4": 1, "b2": 4, "b7": 3}
    hub_kg = {b: hub_kwh * grid * n / sum(parcels.values()) for b, n in parcels.items()}

    carriers = {"acme": ["b1"], "bolt": ["b2", "b4"], "citypost": ["b7"]}
    out = {}
    for carrier, bookings in carriers.items():
        base_km = sum(gc_km[b] for b in bookings) * c
        trunk_km = sum(trunk_gc[b] for b in bookings) * c
        lm_diesel = sum(diesel_lm[b] for b in bookings)
        o = {
            "baseline_van_km": base_km,
            "baseline_van_km_in_city": sum(gc_city[b] for b in bookings) * c,
            "baseline_van_trips": sum(trips[b] for b in bookings),
            "baseline_kgco2e": dkg(base_km),
            "baseline_ttw_kgco2e": base_km * l100 / 100 * f["diesel.ttw_kgco2e_per_l"],
            "depot_hub_km": trunk_km,
            "depot_hub_km_in_city": sum(trunk_city[b] for b in bookings) * c,
            "depot_hub_kgco2e": dkg(trunk_km),
            "hub_kgco2e": sum(hub_kg[b] for b in bookings),
            "electricity_kwh": sum(kwh[b] for b in bookings),
            "last_mile_kgco2e": dkg(lm_diesel) + sum(kwh[b] for b in bookings) * grid,
            "parcels": sum(parcels[b] for b in bookings),
        }
        o["actual_kgco2e"] = o["depot_hub_kgco2e"] + o["hub_kgco2e"] + o["last_mile_kgco2e"]
        # TTW: diesel only (electricity is all well-to-tank)
        o["actual_ttw_kgco2e"] = (trunk_km + lm_diesel) * l100 / 100 * f["diesel.ttw_kgco2e_per_l"]
        o["saving_kgco2e"] = o["baseline_kgco2e"] - o["actual_kgco2e"]
        o["diesel_van_km_avoided"] = base_km - trunk_km - lm_diesel
        o["diesel_van_km_avoided_in_city"] = (
            o["baseline_van_km_in_city"] - o["depot_hub_km_in_city"] - lm_diesel
        )
        o["nox_avoided_in_city_g"] = (
            o["diesel_van_km_avoided_in_city"] * f["pollutant.diesel_van.nox_g_per_km"]
        )
        o["pm25_avoided_in_city_g"] = (
            o["diesel_van_km_avoided_in_city"] * f["pollutant.diesel_van.pm25_g_per_km"]
        )
        out[carrier] = o
    return out


def expected_saving_range() -> tuple[float, float, float]:
    """docs/methodology.md, "Uncertainty": each ranged parameter alone at its low and high
    end; the range is central -+ the root sum of squares of the decreases / increases."""
    central = sum(o["saving_kgco2e"] for o in expected().values())
    down = up = 0.0
    moved = [
        "vehicle.diesel_van.l_per_100km",
        "diesel.ttw_kgco2e_per_l",
        "diesel.wtt_kgco2e_per_l",
        "road.circuity_factor",
        "grid.DE.location_gco2e_per_kwh",
        "grid.DE.loss_share",
        "electricity.charging_loss_factor",
        "vehicle.e_cargo_bike.battery_kwh_per_km",
        "vehicle.e_trike.battery_kwh_per_km",
        "vehicle.e_van.battery_kwh_per_km",
        "hub.default_kwh_per_day",
    ]
    for key in moved:
        for end in ("low", "high"):
            change = (
                sum(o["saving_kgco2e"] for o in expected(factor_values({key: end})).values())
                - central
            )
            down, up = (down + change**2, up) if change < 0 else (down, up + change**2)
    return central - math.sqrt(down), central, central + math.sqrt(up)


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


async def test_small_month_matches_the_hand_computation(reporting: ReportingService) -> None:
    for event in EVENTS:
        assert await apply(reporting, event)
    report = await reporting.report("berlin", "2026-10", now=datetime(2026, 11, 21, tzinfo=UTC))
    want = expected()
    carriers = {row.carrier_id: row for row in report.by_carrier}
    assert set(carriers) == set(want)
    for carrier, figures in want.items():
        got = carriers[carrier].model_dump()
        for field, value in figures.items():
            # whole metres and watt-hours in the projection, the polygon sampled here: a
            # few grams and metres of slack
            assert got[field] == pytest.approx(value, rel=2e-4, abs=0.02), (carrier, field)
    totals = report.totals
    for field in ("baseline_kgco2e", "actual_kgco2e", "saving_kgco2e", "hub_kgco2e"):
        assert getattr(totals, field) == pytest.approx(
            sum(w[field] for w in want.values()), rel=2e-4, abs=0.05
        ), field
    assert totals.actual_wtt_kgco2e + totals.actual_ttw_kgco2e == pytest.approx(
        totals.actual_kgco2e, rel=1e-5
    )
    low, central, high = expected_saving_range()
    assert report.ranges.saving_kgco2e.central == pytest.approx(central, rel=2e-4)
    assert report.ranges.saving_kgco2e.low == pytest.approx(low, rel=2e-3)
    assert report.ranges.saving_kgco2e.high == pytest.approx(high, rel=2e-3)
    assert totals.routes == 3 and totals.consignments == 4  # r4 is November's, b3 cancelled
    assert totals.stops == 5 and totals.delivered_stops == 2  # r1: s4 failed; r2, r5 planned
    assert totals.parcels == 11
    assert report.status == "closed" and report.version.number == 1
    # r1 ran 15.2 km (completed), r2 22 km and r5 11 km from the plan
    assert report.data_basis["last_mile_km_from_actual_share"] == pytest.approx(
        15.2 / 48.2, abs=1e-4
    )
    (hub,) = report.hub_energy
    assert hub.basis == "modelled" and hub.days == 31 and hub.parcels == 11
    assert hub.kwh == pytest.approx(v("hub.default_kwh_per_day") * 31)
    daily = {d.date: d for d in report.daily}
    assert daily["2026-10-01"].stops == 1 and daily["2026-10-14"].stops == 3
    assert len(daily) == 31
    assert {row.hub_id for row in report.by_hub} == {"ber-westhafen"}
    assert {row.vehicle_type for row in report.by_vehicle_type} == {
        "e_cargo_bike",
        "diesel_van",
        "e_van",
    }
    keys = {row.key for row in report.factors.table}
    assert {
        "diesel.wtt_kgco2e_per_l",
        "grid.DE.location_gco2e_per_kwh",
        "vehicle.e_van.battery_kwh_per_km",
    } <= keys
    assert [t.month for t in report.trend][-1] == "2026-10" and len(report.trend) == 12
    assert report.headline.verdict in {"saved", "added", "uncertain"}


async def test_a_meter_reading_replaces_the_default_and_makes_a_new_version(
    reporting: ReportingService,
) -> None:
    from services.reporting.hub_energy import MeterReading

    for event in EVENTS:
        await apply(reporting, event)
    closed = datetime(2026, 11, 21, tzinfo=UTC)
    first = await reporting.report("berlin", "2026-10", now=closed)
    await reporting.put_hub_energy(
        "ber-westhafen",
        "2026-10",
        MeterReading(kwh=400, supplier_gco2e_per_kwh=20, meter="M-1"),
        "ops",
    )
    second = await reporting.report("berlin", "2026-10", now=datetime(2026, 11, 25, tzinfo=UTC))
    grid = v("grid.DE.location_gco2e_per_kwh") / (1 - v("grid.DE.loss_share")) / 1000
    (hub,) = second.hub_energy
    assert hub.basis == "metered" and hub.kwh == 400
    assert second.totals.hub_kgco2e == pytest.approx(400 * grid, rel=1e-5)
    assert hub.market_based_kgco2e == pytest.approx(
        400 * 20 / (1 - v("grid.DE.loss_share")) / 1000, rel=1e-5
    )
    assert second.data_quality[2].leg == "hub" and second.data_quality[2].primary_share == 1.0
    # the published first version is kept; the second names it and why
    assert second.version.number == 2 and second.version.supersedes is not None
    assert second.version.supersedes.id == first.version.id
    assert second.version.supersedes.changed == ["inputs (events or meter readings)"]
    assert second.inputs.digest != first.inputs.digest
    assert to_json(first) == (await reporting.published("berlin", "2026-10", 1))
    again = await reporting.report("berlin", "2026-10", now=datetime(2026, 11, 30, tzinfo=UTC))
    assert to_json(again) == to_json(second)  # same content: the stored bytes


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
    # the inputs changed (re-sent events are inputs): a new published version
    assert again["version"]["number"] == 2 and before["version"]["number"] == 1


async def test_a_closed_month_is_byte_identical_and_formats_render(
    reporting: ReportingService,
) -> None:
    for event in reversed(EVENTS[7:]):  # routes before bookings: the projection does not mind
        await apply(reporting, event)
    for event in EVENTS[:7]:
        await apply(reporting, event)
    report = await reporting.report("berlin", "2026-10")
    a = to_json(report)
    assert to_json(await reporting.report("berlin", "2026-10")) == a
    csv = render(report, "csv").decode()
    assert (
        "factor,grid.DE.location_gco2e_per_kwh,value,381.0," in csv and "methodology,1,step" in csv
    )
    assert "range,berlin,saving_kgco2e" in csv and "hub_energy,ber-westhafen,kwh" in csv
    html = render(report, "html").decode()
    assert (
        html.count("<svg") == 3 and "Appendix: methodology" in html and "Our World in Data" in html
    )
    assert report.headline.sentence in html
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
    assert empty.totals.baseline_kgco2e == 0 and empty.inputs.events == 0
    assert empty.headline.verdict == "no_data"
    assert "no_data" in {b.kind for b in empty.banners}


async def test_an_open_month_is_provisional(reporting: ReportingService) -> None:
    for event in EVENTS:
        await apply(reporting, event)
    report = await reporting.report("berlin", "2026-10", now=datetime(2026, 10, 20, 12, tzinfo=UTC))
    assert report.status == "open" and report.version.number is None
    assert "open_month" in {b.kind for b in report.banners}
    # the default hub energy counts the days up to the last route (20 Oct), not the month
    (hub,) = report.hub_energy
    assert hub.days == 20
    assert await reporting.report_versions("berlin", "2026-10") == []


async def test_a_city_override_file_changes_that_citys_report_only(tmp_path: Path) -> None:
    override = tmp_path / "factors.yaml"
    zero = {
        "value": 0,
        "unit": "gCO2e/kWh",
        "source": "test: a grid without emissions",
        "year": 2026,
        "confidence": "high",
    }
    override.write_text(
        yaml.safe_dump(
            {
                "version": "berlin-green-2026",
                "cities": {"berlin": {"grid.DE.location_gco2e_per_kwh": zero}},
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
    vehicles = {row.vehicle_type: row for row in report.by_vehicle_type}
    assert (
        vehicles["e_cargo_bike"].last_mile_kgco2e == 0 and vehicles["e_van"].last_mile_kgco2e == 0
    )
    assert report.totals.hub_kgco2e == 0
    assert vehicles["diesel_van"].last_mile_kgco2e == pytest.approx(diesel_kg(22.0), rel=1e-5)
    grid = next(f for f in report.factors.table if f.key == "grid.DE.location_gco2e_per_kwh")
    assert grid.overridden and grid.value == 0
    assert report.factors.version.endswith("+berlin-green-2026")
    assert "overridden_factors" in {b.kind for b in report.banners}
