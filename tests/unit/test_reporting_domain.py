"""The emissions methodology's pure rules (services/reporting/domain.py, factors.py)."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from services.reporting import domain, tours
from services.reporting.baselines import trunk_trips
from services.reporting.domain import Point, StopLoad
from services.reporting.factors import DEFAULT_FILE, FactorCatalogue, FactorError, read_factor_file
from services.reporting.geo import Polygon
from services.reporting.tours import Shipment, Van, baseline_shares, plan_tours

DEPOT = Point(52.40, 13.10)


def test_great_circle_of_one_degree_of_latitude_is_about_111_km() -> None:
    assert domain.great_circle_km(Point(0, 0), Point(1, 0)) == pytest.approx(
        2 * math.pi * domain.EARTH_RADIUS_KM / 360, rel=1e-9
    )
    assert domain.great_circle_km(DEPOT, DEPOT) == 0


@pytest.mark.parametrize(
    ("weight", "volume", "trips"),
    [
        (10, 1, 1),
        (1000, 1, 1),
        (1000.5, 1, 2),
        (10, 10.0, 1),
        (10, 25, 3),
        (2500, 1, 3),
        (0.0001, 0.0001, 1),
    ],
)
def test_trips_needed_follow_payload_and_volume(weight: float, volume: float, trips: int) -> None:
    assert domain.trips_needed(weight, volume, 1000, 10) == trips


def _ship(booking: str, depot: Point, weight: float, *stops: Point, volume: float = 0.1):
    return Shipment(
        booking,
        depot,
        weight,
        volume,
        len(stops),
        tuple((f"s{i}", p, 1) for i, p in enumerate(stops)),
    )


VAN = Van(payload_kg=1000, volume_m3=10, max_stops=120)


def test_a_tour_is_the_shortest_order_for_a_few_stops() -> None:
    far, near, mid = Point(52.60, 13.50), Point(52.45, 13.20), Point(52.52, 13.45)
    (tour,) = plan_tours(DEPOT, [_ship("b1", DEPOT, 10, far, near, mid)], VAN, None)
    gc = domain.great_circle_km
    best = min(
        sum(gc(a, b) for a, b in itertools.pairwise([DEPOT, *order, DEPOT]))
        for order in itertools.permutations([far, near, mid])
    )
    assert tour.km == pytest.approx(best, rel=1e-12)


def test_two_opt_uncrosses_a_crossing_tour() -> None:
    square = [Point(52.50, 13.30), Point(52.60, 13.40), Point(52.50, 13.40), Point(52.60, 13.30)]
    depot = Point(52.55, 13.25)
    crossing = [0, 1, 2, 3]
    gc = domain.great_circle_km

    def length(order):
        return sum(
            gc(a, b) for a, b in itertools.pairwise([depot, *(square[i] for i in order), depot])
        )

    assert length(tours.two_opt(depot, square, crossing)) < length(crossing) - 1


def test_a_stop_heavier_than_a_van_gets_full_vans_and_the_rest_joins_a_tour() -> None:
    a, b = Point(52.45, 13.20), Point(52.60, 13.50)
    heavy = _ship("b1", DEPOT, 1500, a)
    light = _ship("b2", DEPOT, 10, b)
    shares = baseline_shares([heavy, light], VAN, None, pooled=True)
    gc = domain.great_circle_km
    # one full van to a and back, then one tour with the remaining 500 kg and b's 10 kg
    shared = gc(DEPOT, a) + gc(a, b) + gc(b, DEPOT)
    assert sum(s.gc_m for s in shares.values()) == pytest.approx(
        (2 * gc(DEPOT, a) + shared) * 1000, abs=2
    )
    assert sum(s.trips_x1000 for s in shares.values()) == 2000
    assert shares["b1"].trips_x1000 > 1000 > shares["b2"].trips_x1000


def test_consignments_of_a_carrier_day_share_tours_and_alone_drive_more() -> None:
    stops = [Point(52.50 + 0.01 * i, 13.40 + 0.01 * (i % 3)) for i in range(12)]
    shipments = [_ship(f"b{i}", DEPOT, 20, p) for i, p in enumerate(stops)]
    pooled = baseline_shares(shipments, VAN, None, pooled=True)
    alone = baseline_shares(shipments, VAN, None, pooled=False)
    assert sum(s.trips_x1000 for s in pooled.values()) == 1000
    assert sum(s.trips_x1000 for s in alone.values()) == 12_000
    assert sum(s.gc_m for s in pooled.values()) < 0.2 * sum(s.gc_m for s in alone.values())


def test_stops_per_tour_and_load_volume_cut_tours() -> None:
    stops = [Point(52.50 + 0.002 * i, 13.40) for i in range(10)]
    by_stops = plan_tours(DEPOT, [_ship("b", DEPOT, 10, *stops)], Van(1000, 10, 4), None)
    assert [len(t.stops) for t in by_stops] == [4, 4, 2]
    by_volume = plan_tours(DEPOT, [_ship("b", DEPOT, 10, *stops, volume=25)], VAN, None)
    assert len(by_volume) == 3


def test_the_sweep_starts_after_the_widest_empty_angle() -> None:
    depot = Point(52.50, 13.40)
    # stops at bearings of about 350, 0 and 10 degrees: one cluster across east
    loads = [
        tours._Load(
            "b",
            f"s{i}",
            Point(
                depot.lat + math.sin(math.radians(a)) * 0.01,
                depot.lon + math.cos(math.radians(a)) * 0.0164,
            ),
            1,
            0.1,
        )
        for i, a in enumerate((10, 350, 0))
    ]
    assert [s.stop_id for s in tours.sweep_order(depot, loads)] == ["s1", "s2", "s0"]


def test_trunk_is_depot_hub_round_trips_with_its_in_city_part() -> None:
    hub = Point(52.538, 13.341)
    city = Polygon([Point(52.45, 13.2), Point(52.65, 13.2), Point(52.65, 13.6), Point(52.45, 13.6)])
    t = trunk_trips(
        depot=DEPOT,
        hub=hub,
        weight_kg=2100,
        volume_m3=1,
        payload_kg=1000,
        volume_cap_m3=10,
        city=city,
    )
    assert t["trunk_trips"] == 3
    assert t["trunk_gc_m"] == round(3 * 2 * domain.great_circle_km(DEPOT, hub) * 1000)
    assert 0 < t["trunk_city_gc_m"] < t["trunk_gc_m"] and t["trunk_city_trips"] == 3


def test_inside_share_of_legs() -> None:
    square = Polygon([Point(52.0, 13.0), Point(53.0, 13.0), Point(53.0, 14.0), Point(52.0, 14.0)])
    assert square.inside_share(Point(52.2, 13.2), Point(52.8, 13.8)) == 1.0
    assert square.inside_share(Point(51.0, 12.0), Point(51.5, 12.5)) == 0.0
    # from the middle to twice as far out: half inside
    assert square.inside_share(Point(52.5, 13.5), Point(52.5, 14.5)) == pytest.approx(0.5, abs=1e-9)
    # in, out and in again through a notch (a U shape)
    u = Polygon(
        [
            Point(52, 13),
            Point(53, 13),
            Point(53, 13.4),
            Point(52.2, 13.4),
            Point(52.2, 13.6),
            Point(53, 13.6),
            Point(53, 14),
            Point(52, 14),
        ]
    )
    assert u.inside_share(Point(52.5, 13.2), Point(52.5, 13.8)) == pytest.approx(2 / 3, abs=1e-9)


def test_allocation_is_by_weight_times_distance() -> None:
    hub = Point(52.5, 13.4)
    near, far = Point(52.51, 13.4), Point(52.53, 13.4)
    shares = domain.allocation_shares(
        hub, [StopLoad("a", near, 10), StopLoad("b", far, 10), StopLoad("a", far, 0)], 1.3
    )
    d_near, d_far = domain.great_circle_km(hub, near), domain.great_circle_km(hub, far)
    assert shares["a"] == pytest.approx(d_near / (d_near + d_far))
    assert shares["b"] == pytest.approx(d_far / (d_near + d_far))


def test_weightless_route_is_allocated_by_stop_count() -> None:
    hub = Point(52.5, 13.4)
    shares = domain.allocation_shares(
        hub, [StopLoad("a", hub, 0), StopLoad("a", hub, 0), StopLoad("b", hub, 0)], 1.3
    )
    assert shares == {"a": pytest.approx(2 / 3), "b": pytest.approx(1 / 3)}


def test_apportion_gives_whole_parts_that_add_up() -> None:
    assert domain.apportion(10, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 4, "b": 3, "c": 3}
    assert domain.apportion(0, {"a": 0.5, "b": 0.5}) == {"a": 0, "b": 0}
    with pytest.raises(ValueError):
        domain.apportion(-1, {"a": 1.0})


def test_month_window_uses_local_midnight_and_dst_days() -> None:
    w = domain.month_window("2026-10", "Europe/Berlin")
    assert len(w.days) == 31
    assert w.start.isoformat() == "2026-10-01T00:00:00+02:00"
    assert w.end.isoformat() == "2026-11-01T00:00:00+01:00"
    lengths = {d: (hi - lo) / 3_600_000 for d, lo, hi in w.days}
    assert lengths["2026-10-25"] == 25  # clocks go back
    assert lengths["2026-10-24"] == 24
    assert all(w.days[i][2] == w.days[i + 1][1] for i in range(30))


@pytest.mark.parametrize(
    "bad", ["2026-13", "2026-1", "26-10", "2026/10", "", "2026-10-01", "abcd-ef"]
)
def test_malformed_months_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        domain.parse_month(bad)


def test_shipped_factor_file_is_complete_for_the_sample_cities() -> None:
    catalogue = FactorCatalogue.load()
    for city, country in (("berlin", "DE"), ("oslo", "NO")):
        factors = catalogue.for_city(city)
        p = factors.parameters(country, hubs=["h"], carriers=["c"])
        assert p.diesel_ttw_kg_per_l > 0 and p.grid_location_g_per_kwh > 0
        assert factors.boundary is not None and len(factors.boundary.polygon) >= 8
        assert factors.tour_grouping == "carrier_day"
    raw = yaml.safe_load(DEFAULT_FILE.read_text())
    for key, f in raw["factors"].items():
        # every value with source, year, boundary, GWP set and (for factors) a range
        assert f["source"] and f["unit"] and f["year"], key
        if key not in ("vehicle.diesel_van.payload_kg", "vehicle.diesel_van.load_volume_m3"):
            assert {"low", "high", "boundary", "gwp"} <= set(f), key
            assert f["low"] <= f["value"] <= f["high"], key
    # DESNZ 2025 B7: 2.57082 TTW + 0.62665 WTT = 3.19747 kg/l well-to-wheel
    assert raw["factors"]["diesel.ttw_kgco2e_per_l"]["value"] + raw["factors"][
        "diesel.wtt_kgco2e_per_l"
    ]["value"] == pytest.approx(3.19747)


def test_dispatch_and_reporting_use_one_source_of_vehicle_energy_and_circuity() -> None:
    from contracts.vehicle_energy import vehicle_energy
    from services.dispatch.fleet import load_fleet

    shared = vehicle_energy().vehicles
    fleet = load_fleet()
    for hub in fleet.hubs:
        for vehicle in hub.vehicles:
            assert vehicle.energy_kwh_per_km == shared[vehicle.type].central, vehicle.id
    berlin = FactorCatalogue.load().for_city("berlin")
    for vehicle_type, e in shared.items():
        f = berlin.factor(f"vehicle.{vehicle_type.value}.battery_kwh_per_km")
        assert (f.low, f.value, f.high) == (e.low, e.central, e.high)
    for city in ("berlin", "oslo"):
        assert FactorCatalogue.load().for_city(city).value(
            "road.circuity_factor"
        ) == fleet.circuity_of(city)


def test_the_methodology_document_names_the_version_the_code_computes() -> None:
    from services.reporting.report import METHODOLOGY_VERSION

    doc = (Path(__file__).parents[2] / "docs" / "methodology.md").read_text()
    assert f"Methodology version {METHODOLOGY_VERSION}" in doc


def test_user_file_overrides_globally_and_per_city(tmp_path: Path) -> None:
    user = tmp_path / "factors.yaml"
    factor = {
        "value": 20,
        "unit": "gCO2e/kWh",
        "source": "city utility",
        "year": 2025,
        "confidence": "high",
    }
    user.write_text(
        yaml.safe_dump(
            {
                "version": "oslo-2025",
                "factors": {
                    "vehicle.diesel_van.l_per_100km": {**factor, "value": 9.5, "unit": "l/100km"}
                },
                "cities": {"oslo": {"grid.NO.location_gco2e_per_kwh": factor}},
            }
        )
    )
    catalogue = FactorCatalogue.load(user)
    oslo, berlin = catalogue.for_city("oslo"), catalogue.for_city("berlin")
    assert oslo.value("grid.NO.location_gco2e_per_kwh") == 20
    assert (
        berlin.value("grid.NO.location_gco2e_per_kwh")
        == read_factor_file(DEFAULT_FILE).factors["grid.NO.location_gco2e_per_kwh"].value
    )
    assert (
        oslo.value("vehicle.diesel_van.l_per_100km")
        == berlin.value("vehicle.diesel_van.l_per_100km")
        == 9.5
    )
    assert "grid.NO.location_gco2e_per_kwh" in oslo.overridden
    assert "road.circuity_factor" not in oslo.overridden  # the shipped city value
    assert oslo.version.endswith("+oslo-2025")
    assert oslo.digest != berlin.digest
    # a v1 key would be ignored by v2: it is refused, naming its replacement
    user.write_text(
        yaml.safe_dump({"version": "v1", "cities": {"oslo": {"grid.NO.gco2e_per_kwh": factor}}})
    )
    with pytest.raises(FactorError, match=r"grid\.NO\.location_gco2e_per_kwh"):
        FactorCatalogue.load(user)


def test_bad_factor_files_are_refused_naming_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "version": "x",
                "factors": {
                    "k": {
                        "value": -1,
                        "unit": "u",
                        "source": "s",
                        "year": 2020,
                        "confidence": "high",
                    }
                },
            }
        )
    )
    with pytest.raises(FactorError, match=r"factors\.k\.value"):
        read_factor_file(bad)
    with pytest.raises(FactorError, match="does not exist"):
        read_factor_file(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(FactorError, match="mapping"):
        read_factor_file(tmp_path / "list.yaml")
    with pytest.raises(FactorError, match=r"grid\.XX"):
        FactorCatalogue.load().for_city("x").parameters("XX")
    (tmp_path / "range.yaml").write_text(
        yaml.safe_dump(
            {
                "version": "x",
                "factors": {
                    "k": {
                        "value": 2,
                        "low": 3,
                        "unit": "u",
                        "source": "s",
                        "year": 2020,
                        "confidence": "high",
                    }
                },
            }
        )
    )
    with pytest.raises(FactorError, match="low <= value <= high"):
        read_factor_file(tmp_path / "range.yaml")


def test_a_month_is_closed_two_days_after_its_last_local_midnight() -> None:
    w = domain.month_window("2026-10", "Europe/Berlin")
    assert not domain.month_is_closed(w, w.end)
    assert not domain.month_is_closed(w, w.end + domain.CLOSING_GRACE - timedelta(seconds=1))
    assert domain.month_is_closed(w, w.end + domain.CLOSING_GRACE)
