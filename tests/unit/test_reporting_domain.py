"""The emissions methodology's pure rules (services/reporting/domain.py, factors.py)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from services.reporting import domain
from services.reporting.domain import Point, StopLoad
from services.reporting.factors import DEFAULT_FILE, FactorCatalogue, FactorError, read_factor_file

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


def test_one_trip_baseline_is_depot_stops_depot_in_nearest_neighbour_order() -> None:
    far, near = Point(52.60, 13.50), Point(52.45, 13.20)
    base = domain.baseline(
        depot=DEPOT,
        stops=[far, near],
        weight_kg=10,
        volume_m3=1,
        payload_kg=1000,
        volume_cap_m3=10,
        circuity=1.3,
    )
    gc = domain.great_circle_km
    expected_km = 1.3 * (gc(DEPOT, near) + gc(near, far) + gc(far, DEPOT))
    assert base.trips == 1
    assert base.metres == round(expected_km * 1000)


def test_heavy_consignment_is_split_into_trips_over_contiguous_stop_groups() -> None:
    a, b = Point(52.45, 13.20), Point(52.60, 13.50)
    base = domain.baseline(
        depot=DEPOT,
        stops=[b, a],
        weight_kg=1500,
        volume_m3=1,
        payload_kg=1000,
        volume_cap_m3=10,
        circuity=1.0,
    )
    gc = domain.great_circle_km
    assert base.trips == 2
    assert base.metres == round((2 * gc(DEPOT, a) + 2 * gc(DEPOT, b)) * 1000)


def test_more_trips_than_stops_revisit_the_stops() -> None:
    only = Point(52.50, 13.40)
    tours = domain.baseline_tours(DEPOT, [only], 3)
    assert tours == [[0], [0], [0]]


def test_trunk_is_depot_hub_round_trips() -> None:
    hub = Point(52.538, 13.341)
    t = domain.trunk(
        depot=DEPOT,
        hub=hub,
        weight_kg=2100,
        volume_m3=1,
        payload_kg=1000,
        volume_cap_m3=10,
        circuity=1.2,
    )
    assert t.trips == 3
    assert t.metres == round(3 * 2 * 1.2 * domain.great_circle_km(DEPOT, hub) * 1000)


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
        p = catalogue.for_city(city).parameters(country)
        assert p.diesel_wtw_kg_per_l > 0 and p.grid_g_per_kwh > 0
    table = catalogue.for_city("berlin").table()
    assert all(row["source"] and row["unit"] and row["year"] for row in table)


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
                "cities": {"oslo": {"grid.NO.gco2e_per_kwh": factor}},
            }
        )
    )
    catalogue = FactorCatalogue.load(user)
    oslo, berlin = catalogue.for_city("oslo"), catalogue.for_city("berlin")
    assert oslo.value("grid.NO.gco2e_per_kwh") == 20
    assert (
        berlin.value("grid.NO.gco2e_per_kwh")
        == read_factor_file(DEFAULT_FILE).factors["grid.NO.gco2e_per_kwh"].value
    )
    assert (
        oslo.value("vehicle.diesel_van.l_per_100km")
        == berlin.value("vehicle.diesel_van.l_per_100km")
        == 9.5
    )
    assert "grid.NO.gco2e_per_kwh" in oslo.overridden
    assert oslo.version.endswith("+oslo-2025")
    assert oslo.digest != berlin.digest


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


def test_a_month_is_closed_two_days_after_its_last_local_midnight() -> None:
    w = domain.month_window("2026-10", "Europe/Berlin")
    assert not domain.month_is_closed(w, w.end)
    assert not domain.month_is_closed(w, w.end + domain.CLOSING_GRACE - timedelta(seconds=1))
    assert domain.month_is_closed(w, w.end + domain.CLOSING_GRACE)
