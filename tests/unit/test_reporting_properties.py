"""Invariants of the methodology (hypothesis): shares of a route sum to 1, apportioned
integers add up exactly, saving = baseline - actual, and a city's total is the sum of its
hubs and the sum of its carriers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting import domain
from services.reporting.factors import FactorCatalogue
from services.reporting.queries import Group
from services.reporting.report import summarise

points = st.builds(
    domain.Point,
    st.floats(min_value=52.3, max_value=52.7, allow_nan=False),
    st.floats(min_value=13.0, max_value=13.8, allow_nan=False),
)
stop_loads = st.lists(
    st.builds(
        domain.StopLoad,
        st.sampled_from(["b1", "b2", "b3", "b4"]),
        points,
        st.floats(min_value=0, max_value=500, allow_nan=False),
    ),
    min_size=1,
    max_size=30,
)


@given(hub=points, stops=stop_loads)
def test_allocation_shares_of_a_route_sum_to_one(hub: domain.Point, stops: list) -> None:
    shares = domain.allocation_shares(hub, stops, 1.343)
    assert set(shares) == {s.booking_id for s in stops}
    assert all(0 <= v <= 1 for v in shares.values())
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)


@given(total=st.integers(min_value=0, max_value=10**9), hub=points, stops=stop_loads)
def test_apportioned_metres_add_up_to_the_route_exactly(
    total: int, hub: domain.Point, stops: list
) -> None:
    parts = domain.apportion(total, domain.allocation_shares(hub, stops, 1.343))
    assert sum(parts.values()) == total
    assert all(v >= 0 for v in parts.values())


@given(
    depot=points,
    stops=st.lists(points, min_size=1, max_size=12),
    weight=st.floats(min_value=0.1, max_value=5000),
    volume=st.floats(min_value=0.01, max_value=40),
)
def test_baseline_trips_cover_every_stop_and_capacity(depot, stops, weight, volume) -> None:
    trips = domain.trips_needed(weight, volume, 1000, 10)
    tours = domain.baseline_tours(depot, stops, trips)
    assert len(tours) == trips
    assert {i for tour in tours for i in tour} == set(range(len(stops)))
    assert trips * 1000 >= weight - 1e-6 and trips * 10 >= volume - 1e-6


groups = st.lists(
    st.builds(
        Group,
        day=st.sampled_from(["2026-10-01", "2026-10-02", "2026-10-25"]),
        hub_id=st.sampled_from(["ber-westhafen", "ber-suedkreuz", "ber-ostkreuz"]),
        carrier_id=st.sampled_from(["acme", "bolt", "citypost"]),
        vehicle_type=st.sampled_from(["e_cargo_bike", "e_trike", "e_van", "diesel_van"]),
        allocations=st.integers(1, 100),
        stops=st.integers(0, 1000),
        delivered_stops=st.integers(0, 1000),
        parcels=st.integers(0, 5000),
        last_mile_m=st.integers(0, 10**7),
        actual_km_m=st.integers(0, 10**7),
        modelled_energy_m=st.integers(0, 10**7),
        measured_wh=st.integers(0, 10**7),
        baseline_m=st.integers(0, 10**8),
        trunk_m=st.integers(0, 10**8),
        baseline_trips_x1000=st.integers(0, 10**6),
    ),
    max_size=40,
    unique_by=lambda g: (g.day, g.hub_id, g.carrier_id, g.vehicle_type),
)

PARAMS = FactorCatalogue.load().for_city("berlin").parameters("DE")
DAYS = ["2026-10-01", "2026-10-02", "2026-10-25"]
ADDITIVE = (
    "baseline_kgco2e",
    "actual_kgco2e",
    "saving_kgco2e",
    "diesel_van_km_avoided",
    "electricity_kwh",
    "nox_avoided_g",
    "stops",
    "parcels",
)


@settings(max_examples=200)
@given(groups=groups)
def test_saving_is_baseline_minus_actual_and_totals_add_up(groups: list[Group]) -> None:
    s = summarise(
        sorted(groups, key=lambda g: (g.day, g.hub_id, g.carrier_id, g.vehicle_type)), PARAMS, DAYS
    )
    t = s["totals"]
    # each figure is rounded to 6 significant digits on its own: allow those roundings
    rel = 1e-5  # half a unit in the 6th digit is up to 5e-6 of the value
    scale = max(abs(t["baseline_kgco2e"]), abs(t["actual_kgco2e"]))
    assert t["saving_kgco2e"] == pytest.approx(
        t["baseline_kgco2e"] - t["actual_kgco2e"], abs=rel * scale + 1e-9
    )
    assert t["actual_kgco2e"] == pytest.approx(
        t["depot_hub_kgco2e"] + t["last_mile_kgco2e"], abs=rel * scale + 1e-9
    )
    for section in ("by_hub", "by_carrier", "by_vehicle_type", "daily"):
        rows = s[section]
        for field in ADDITIVE:
            if not isinstance(t[field], float):
                assert sum(r[field] for r in rows) == t[field], (section, field)
                continue
            magnitude = sum(abs(r[field]) for r in rows) + abs(t[field])
            assert sum(r[field] for r in rows) == pytest.approx(
                t[field], abs=rel * magnitude + 1e-9
            ), (section, field)
