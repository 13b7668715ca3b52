"""Invariants of the methodology (hypothesis): shares of a route and of a tour sum to 1,
apportioned integers add up exactly, every stop is on exactly one baseline tour within the
van's limits, hub energy is allocated in full, a city's total is the sum of its hubs, of
its carriers and of its days, and every range has low <= central <= high."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reporting import domain
from services.reporting.factors import FactorCatalogue
from services.reporting.figures import Quantities, evaluate, rollup
from services.reporting.hub_energy import allocate
from services.reporting.queries import Group
from services.reporting.tours import Shipment, Van, baseline_shares, plan_tours, tour_shares
from services.reporting.uncertainty import ranges_and_sensitivity

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


shipments = st.lists(
    st.builds(
        lambda i, depot, weight, volume, stops: Shipment(
            f"b{i}",
            depot,
            weight,
            volume,
            sum(p for _s, _l, p in stops),
            tuple(stops),
        ),
        st.integers(0, 10**6),
        st.sampled_from([domain.Point(52.40, 13.10), domain.Point(52.45, 13.60)]),
        st.floats(min_value=0, max_value=3000),
        st.floats(min_value=0, max_value=30),
        st.lists(
            st.tuples(st.sampled_from(["s1", "s2", "s3", "s4"]), points, st.integers(1, 5)),
            min_size=1,
            max_size=4,
            unique_by=lambda s: s[0],
        ),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda s: s.booking_id,
)


@settings(max_examples=80, deadline=None)
@given(shipments=shipments, max_stops=st.integers(1, 20))
def test_every_stop_is_on_a_tour_within_the_vans_limits(shipments: list, max_stops: int) -> None:
    van = Van(1000, 10, max_stops)
    for depot in {s.depot for s in shipments}:
        mine = [s for s in shipments if s.depot == depot]
        tours = plan_tours(depot, mine, van, None)
        visited = {(b, loc.lat, loc.lon) for t in tours for b, loc, _w in t.stops}
        wanted = {(s.booking_id, loc.lat, loc.lon) for s in mine for _id, loc, _p in s.stops}
        assert visited == wanted
        for t in tours:
            assert len(t.stops) <= max(1, max_stops)
            assert sum(w for _b, _l, w in t.stops) <= van.payload_kg + 1e-6
            assert sum(tour_shares(t).values()) == pytest.approx(1.0, abs=1e-12)
    shares = baseline_shares(shipments, van, None, pooled=True)
    assert set(shares) == {s.booking_id for s in shipments}
    assert sum(s.trips_x1000 for s in shares.values()) % 1000 == 0


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
        last_mile_m=st.integers(10**6, 10**7),
        actual_km_m=st.integers(0, 10**6),
        modelled_energy_m=st.integers(0, 10**6),
        measured_wh=st.integers(0, 10**7),
        mass_g=st.integers(0, 10**8),
        chain_kgm=st.integers(0, 10**10),
        tours_m=st.integers(0, 10**8),
        tours_city_m=st.integers(0, 10**7),
        tours_x1000=st.integers(0, 10**6),
        tours_city_x1000=st.integers(0, 10**5),
        trunk_m=st.integers(0, 10**8),
        trunk_city_m=st.integers(0, 10**7),
        trunk_x1000=st.integers(0, 10**6),
    ),
    max_size=40,
    unique_by=lambda g: (g.day, g.hub_id, g.carrier_id, g.vehicle_type),
)

BERLIN = FactorCatalogue.load().for_city("berlin")
HUBS = {"ber-westhafen": "Westhafen", "ber-suedkreuz": "Suedkreuz", "ber-ostkreuz": "Ostkreuz"}
PARAMS = BERLIN.parameters("DE", hubs=sorted(HUBS), carriers=["acme", "bolt", "citypost"])
ADDITIVE = (
    "baseline_kgco2e",
    "actual_kgco2e",
    "hub_kgco2e",
    "saving_kgco2e",
    "diesel_van_km_avoided_in_city",
    "electricity_kwh",
    "hub_kwh",
    "nox_avoided_in_city_g",
    "stops",
    "parcels",
)


@settings(max_examples=150, deadline=None)
@given(groups=groups, metered=st.dictionaries(st.sampled_from(sorted(HUBS)), st.floats(0, 5000)))
def test_a_city_is_the_sum_of_its_hubs_carriers_and_days(groups: list, metered: dict) -> None:
    plan = {h: (metered.get(h), 0 if h in metered else 31, None, "") for h in HUBS}
    cells, unallocated = allocate(groups, plan)
    total = Quantities()
    for _g, q in cells:
        total.merge(q)
    for q in unallocated.values():
        total.merge(q)
    t = evaluate(total, PARAMS, 1.3)
    # hub energy is allocated in full: to the cells of hubs that handled parcels, else kept
    hub_kwh = sum(
        m if m is not None else days * PARAMS.hub_kwh_per_day[h]
        for h, (m, days, _s, _) in plan.items()
    )
    assert t["hub_kwh"] == pytest.approx(hub_kwh, rel=1e-9, abs=1e-9)
    by_hub = rollup(cells, lambda g: g.hub_id)
    for h, q in unallocated.items():
        by_hub.setdefault(h, Quantities()).merge(q)
    spare = Quantities()
    for q in unallocated.values():
        spare.merge(q)
    spare_figures = evaluate(spare, PARAMS, 1.3)
    for name, slices, extra in (
        ("hubs", by_hub, None),
        ("carriers", rollup(cells, lambda g: g.carrier_id), spare_figures),
        ("days", rollup(cells, lambda g: g.day), spare_figures),
        ("vehicles", rollup(cells, lambda g: g.vehicle_type), spare_figures),
    ):
        figures = [evaluate(q, PARAMS, 1.3) for q in slices.values()]
        if extra is not None:
            figures.append(extra)  # a hub's energy in a month without parcels: city only
        for field in ADDITIVE:
            assert sum(f[field] for f in figures) == pytest.approx(t[field], rel=1e-9, abs=1e-6), (
                name,
                field,
            )
    assert t["saving_kgco2e"] == pytest.approx(
        t["baseline_kgco2e"] - t["actual_kgco2e"], rel=1e-12, abs=1e-9
    )
    assert t["actual_kgco2e"] == pytest.approx(
        t["depot_hub_kgco2e"] + t["hub_kgco2e"] + t["last_mile_kgco2e"], rel=1e-12, abs=1e-9
    )
    assert t["actual_kgco2e"] == pytest.approx(
        t["actual_ttw_kgco2e"] + t["actual_wtt_kgco2e"], rel=1e-12, abs=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(groups=groups)
def test_every_range_is_low_central_high(groups: list) -> None:
    plan = {h: (None, 31, None, "") for h in HUBS}
    cells, unallocated = allocate(groups, plan)
    total = Quantities()
    for _g, q in cells:
        total.merge(q)
    for q in unallocated.values():
        total.merge(q)
    ranges, rows = ranges_and_sensitivity(
        BERLIN, "DE", total, HUBS, ["acme", "bolt", "citypost"], 1.3
    )
    for r in ranges.model_dump().values():
        assert r["low"] <= r["central"] <= r["high"]
    assert all(row.swing_kgco2e > 0 for row in rows)
    assert [row.swing_kgco2e for row in rows] == sorted(
        (row.swing_kgco2e for row in rows), reverse=True
    )
