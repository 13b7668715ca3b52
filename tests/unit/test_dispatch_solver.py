"""The wave planner on instances small enough to check by hand, and its limits under
random instances (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.dispatch.solver import (
    SOLVER_GREEDY,
    SOLVER_ORTOOLS,
    Point,
    StopDemand,
    VehicleSpec,
    WaveInstance,
    check_plan,
    haversine_km,
    plan_wave,
    road_km,
)

HUB = Point(52.50, 13.40)
# 0.01° of latitude is 1.112 km everywhere
EAST = [Point(52.50, 13.40 + 0.01 * i) for i in range(1, 5)]


def stop(key: str, at: Point, *, parcels: int = 1, kg: float = 5.0, m3: float = 0.05) -> StopDemand:
    return StopDemand(key, at, parcels, kg, m3)


def bike(
    vid: str = "bike-1",
    *,
    parcels: int = 40,
    kg: float = 150,
    m3: float = 1.5,
    range_km: float = 60,
    speed: float = 15,
    minutes: float = 480,
) -> VehicleSpec:
    return VehicleSpec(vid, parcels, kg, m3, range_km, speed, minutes)


def test_haversine_matches_a_known_distance() -> None:
    # Berlin Hbf -> Oslo S: about 836 km great-circle
    assert haversine_km(Point(52.5251, 13.3694), Point(59.9111, 10.7528)) == pytest.approx(
        836, abs=3
    )
    assert haversine_km(Point(52.0, 13.0), Point(52.01, 13.0)) == pytest.approx(1.112, abs=0.001)
    assert road_km(Point(52.0, 13.0), Point(52.01, 13.0), 1.5) == pytest.approx(1.668, abs=0.002)


@pytest.mark.parametrize("limit", [0, 0.5])
def test_stops_on_a_line_are_one_out_and_back_trip(limit: float) -> None:
    instance = WaveInstance(HUB, [stop(f"s{i}", p) for i, p in enumerate(reversed(EAST))], [bike()])
    plan = plan_wave(instance, time_limit_s=limit)
    [route] = plan.routes
    assert not plan.unserved
    # The optimum drives to the farthest stop and back, serving the others on the way.
    assert route.km == pytest.approx(2 * road_km(HUB, EAST[-1]), rel=1e-6)
    # (several orders reach it: out to the farthest and back, serving on either way)
    assert sorted(route.stop_keys) == ["s0", "s1", "s2", "s3"]
    assert route.parcels == 4 and route.weight_kg == pytest.approx(20)
    # 4 stops x 4 min service + driving at 15 km/h
    assert route.duration_min == pytest.approx(route.km / 15 * 60 + 16)


def test_two_clusters_two_vehicles_each_takes_one_cluster() -> None:
    north = [Point(52.53, 13.40), Point(52.531, 13.401)]
    south = [Point(52.47, 13.40), Point(52.469, 13.399)]
    stops = [stop(f"n{i}", p, kg=60) for i, p in enumerate(north)] + [
        stop(f"s{i}", p, kg=60) for i, p in enumerate(south)
    ]
    # each vehicle carries 120 kg: exactly one cluster
    plan = plan_wave(
        WaveInstance(HUB, stops, [bike("a", kg=120), bike("b", kg=120)]), time_limit_s=0.5
    )
    assert plan.solver == SOLVER_ORTOOLS
    assert not plan.unserved
    clusters = sorted(sorted(k[0] for k in r.stop_keys) for r in plan.routes)
    assert clusters == [["n", "n"], ["s", "s"]]
    best_north = road_km(HUB, north[0]) + road_km(north[0], north[1]) + road_km(north[1], HUB)
    best_south = road_km(HUB, south[0]) + road_km(south[0], south[1]) + road_km(south[1], HUB)
    assert plan.total_km == pytest.approx(best_north + best_south, rel=1e-6)
    assert not check_plan(WaveInstance(HUB, stops, [bike("a", kg=120), bike("b", kg=120)]), plan)


def test_unservable_stops_stay_with_a_reason() -> None:
    far = Point(52.90, 13.40)  # 44.5 km away, 115 km there and back with circuity
    late = Point(52.60, 13.40)
    instance = WaveInstance(
        HUB,
        [
            stop("heavy", EAST[0], kg=400),
            stop("bulky", EAST[0], m3=3.0),
            stop("far", far),
            stop("ok", EAST[0]),
        ],
        [bike(range_km=60), bike("bike-2", range_km=80)],
    )
    plan = plan_wave(instance, time_limit_s=0.2)
    reasons = {u.key: u.code for u in plan.unserved}
    assert reasons == {"heavy": "too_heavy", "bulky": "too_large", "far": "beyond_range"}
    assert "150 kg" in next(u.message for u in plan.unserved if u.key == "heavy")
    assert [r.stop_keys for r in plan.routes] == [("ok",)]

    short_shift = WaveInstance(HUB, [stop("late", late)], [bike(minutes=30)])
    [unserved] = plan_wave(short_shift, time_limit_s=0.2).unserved
    assert unserved.code == "past_shift_end"

    nobody = plan_wave(WaveInstance(HUB, [stop("x", late)], []), time_limit_s=0.2)
    assert [u.code for u in nobody.unserved] == ["no_vehicle_free"]


def test_what_does_not_fit_in_this_wave_waits_for_the_next() -> None:
    stops = [stop(f"s{i}", p, kg=60) for i, p in enumerate(EAST)]
    plan = plan_wave(WaveInstance(HUB, stops, [bike(kg=130)]), time_limit_s=0.3)
    assert sum(len(r.stop_keys) for r in plan.routes) == 2
    assert sorted(u.code for u in plan.unserved) == ["wave_full", "wave_full"]


def test_no_time_means_the_deterministic_greedy() -> None:
    stops = [stop(f"s{i}", Point(52.5 + (i % 5) / 100, 13.4 + (i // 5) / 100)) for i in range(20)]
    instance = WaveInstance(
        HUB, stops, [bike("a", parcels=7), bike("b", parcels=7), bike("c", parcels=7)]
    )
    first = plan_wave(instance, time_limit_s=0)
    assert first.solver == SOLVER_GREEDY
    assert first == plan_wave(instance, time_limit_s=0)
    assert not check_plan(instance, first)
    assert sum(len(r.stop_keys) for r in first.routes) == 20
    # the solver given time is never worse than the greedy on this instance
    assert plan_wave(instance, time_limit_s=0.5).total_km <= first.total_km + 1e-9


points = st.builds(
    Point, st.floats(52.40, 52.60, allow_nan=False), st.floats(13.20, 13.60, allow_nan=False)
)
stops_st = st.lists(
    st.builds(
        lambda p, parcels, kg, m3: (p, parcels, kg, m3),
        points,
        st.integers(1, 12),
        st.floats(0.1, 120, allow_nan=False),
        st.floats(0.001, 1.5, allow_nan=False),
    ),
    min_size=1,
    max_size=25,
)
vehicles_st = st.lists(
    st.builds(
        lambda parcels, kg, m3, rng, speed, minutes: (parcels, kg, m3, rng, speed, minutes),
        st.integers(5, 80),
        st.floats(20, 800),
        st.floats(0.3, 8),
        st.floats(3, 120),
        st.floats(8, 40),
        st.floats(10, 600),
    ),
    min_size=0,
    max_size=4,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stops_st, vehicles_st, st.sampled_from([0, 0.05]), st.floats(1.0, 2.0))
def test_limits_are_never_violated(stops, vehicles, limit, circuity) -> None:
    instance = WaveInstance(
        HUB,
        [StopDemand(f"s{i}", p, n, kg, m3) for i, (p, n, kg, m3) in enumerate(stops)],
        [VehicleSpec(f"v{j}", *spec) for j, spec in enumerate(vehicles)],
        circuity=circuity,
    )
    plan = plan_wave(instance, time_limit_s=limit)
    assert check_plan(instance, plan) == []
    assert all(r.stop_keys for r in plan.routes)
    assert math.isfinite(plan.objective)
