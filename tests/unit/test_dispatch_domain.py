"""Dispatch rules: stops from consignments, when a wave is due, route ids, failures,
vehicles as the solver sees them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.booking import Consignment
from contracts.fleet import VehicleStatus
from services.dispatch import domain
from services.dispatch.domain import StopStatus, VehicleState, WavePolicy
from services.dispatch.fleet import FleetFile, VehicleConfig

POLICY = WavePolicy(min_stops=5, max_wait=timedelta(minutes=10))
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin


def consignment(parcels: list[int], kg: float, m3: float) -> Consignment:
    return Consignment.model_validate(
        {
            "parcel_count": sum(parcels),
            "weight_kg": kg,
            "volume_m3": m3,
            "depot": {"lat": 52.4, "lon": 13.1},
            "stops": [
                {"stop_id": f"s{i}", "location": {"lat": 52.5, "lon": 13.4}, "parcels": n}
                for i, n in enumerate(parcels)
            ],
        }
    )


def test_a_consignment_is_shared_by_parcel_count() -> None:
    loads = domain.split_consignment(consignment([1, 3], kg=40, m3=2))
    assert [(s.stop_id, s.parcels, s.weight_kg, s.volume_m3) for s in loads] == [
        ("s0", 1, 10.0, 0.5),
        ("s1", 3, 30.0, 1.5),
    ]


@given(
    st.lists(st.integers(1, 50), min_size=1, max_size=30),
    st.floats(0.1, 40_000, allow_nan=False),
    st.floats(0.01, 200, allow_nan=False),
)
def test_shares_add_up_to_the_consignment(parcels: list[int], kg: float, m3: float) -> None:
    loads = domain.split_consignment(consignment(parcels, kg, m3))
    assert sum(s.weight_kg for s in loads) == pytest.approx(kg, rel=1e-9, abs=1e-6)
    assert sum(s.volume_m3 for s in loads) == pytest.approx(m3, rel=1e-9, abs=1e-6)
    assert all(s.weight_kg >= 0 and s.volume_m3 >= 0 for s in loads)
    assert [s.parcels for s in loads] == parcels


@pytest.mark.parametrize(
    ("now", "waiting", "fresh", "oldest", "last", "due"),
    [
        (T0, 0, 0, None, None, False),  # nothing waits
        (T0, 5, 5, T0, None, True),  # threshold reached
        (T0, 4, 4, T0, None, False),  # below it, queued just now
        (T0 + timedelta(minutes=10), 1, 1, T0, None, True),  # first wave after one interval
        (T0 + timedelta(minutes=9), 9, 0, T0, T0, False),  # leftovers only: wait the interval
        (T0 + timedelta(minutes=10), 9, 0, T0, T0, True),
        (T0 + timedelta(minutes=1), 6, 5, T0, T0, True),  # five new since the last wave
        # the case: a quiet hour after the last wave, then one check-in: it waits
        # for company until its latest departure, counted from its own queueing
        (T0 + timedelta(hours=1), 1, 1, T0 + timedelta(hours=1), T0, False),
        (T0 + timedelta(hours=1, minutes=9), 2, 2, T0 + timedelta(hours=1), T0, False),
        (T0 + timedelta(hours=1, minutes=10), 2, 2, T0 + timedelta(hours=1), T0, True),
    ],
)
def test_when_a_wave_is_due(now, waiting, fresh, oldest, last, due) -> None:
    why = domain.wave_due(
        now=now,
        waiting=waiting,
        fresh=fresh,
        oldest_fresh_since=oldest,
        last_wave_at=last,
        policy=POLICY,
    )
    assert (why is not None) is due


# Berlin, winter: local = UTC + 1. Departures at 10:30 and 14:00 local.
DEPARTURES = WavePolicy(min_stops=15, max_wait=None, departures=(time(10, 30), time(14, 0)))
LOCAL = timedelta(hours=1)


@pytest.mark.parametrize(
    ("local_now", "fresh", "oldest_local", "last_local", "due"),
    [
        # a check-in at 09:05 after a quiet night: no lone route, it waits for 10:30
        ("09:05", 1, "09:05", "yesterday 14:00", False),
        ("09:05", 1, "09:05", None, False),  # before any wave: yesterday's 14:00 is gone
        ("10:31", 1, "09:05", None, True),
        ("10:29", 9, "09:05", "yesterday 14:00", False),
        ("10:30", 9, "09:05", "yesterday 14:00", True),  # the departure
        ("10:31", 9, "09:05", "10:30", False),  # that departure has left
        ("11:00", 15, "10:35", "10:30", True),  # the fill does not wait for 14:00
        ("13:59", 3, "11:10", "11:00", False),
        ("14:02", 3, "11:10", "11:00", True),  # the first event after 14:00
    ],
)
def test_departure_times_make_waves_wait(local_now, fresh, oldest_local, last_local, due) -> None:
    def at(text: str | None) -> datetime | None:
        if text is None:
            return None
        day = T0.date() - timedelta(days=1) if text.startswith("yesterday") else T0.date()
        hours, minutes = text.split()[-1].split(":")
        local = datetime.combine(day, time(int(hours), int(minutes)), tzinfo=UTC)
        return local - LOCAL

    now = at(local_now)
    assert now is not None
    why = domain.wave_due(
        now=now,
        waiting=fresh,
        fresh=fresh,
        oldest_fresh_since=at(oldest_local),
        last_wave_at=at(last_local),
        policy=DEPARTURES,
        timezone="Europe/Berlin",
    )
    assert (why is not None) is due, why


def test_a_hubs_wave_settings_come_from_the_fleet_file() -> None:
    fleet = FleetFile.model_validate(
        {
            "hubs": [
                {"hub_id": "a", "waves": {"departures": ["14:00", "09:30"]}},
                {"hub_id": "b", "waves": {"min_stops": 8, "max_wait_minutes": 45}},
            ]
        }
    )
    default = WavePolicy(min_stops=20, max_wait=timedelta(minutes=10))
    assert fleet.wave_policy("a", default) == WavePolicy(
        min_stops=20, max_wait=None, departures=(time(9, 30), time(14, 0))
    )
    assert fleet.wave_policy("b", default) == WavePolicy(
        min_stops=8, max_wait=timedelta(minutes=45)
    )
    assert fleet.wave_policy("elsewhere", default) == default


def test_route_ids_are_deterministic() -> None:
    wave = domain.wave_id_for("ber-westhafen", 12)
    assert wave == "ber-westhafen:w00012"
    assert domain.route_id_for(wave, "bike-1") == "ber-westhafen:w00012:bike-1"
    assert domain.route_id_for(wave, "bike-1") == domain.route_id_for(wave, "bike-1")


def test_three_failures_return_a_stop() -> None:
    assert [domain.after_failure(n) for n in (1, 2, 3, 4)] == [
        StopStatus.WAITING,
        StopStatus.WAITING,
        StopStatus.RETURNED,
        StopStatus.RETURNED,
    ]


def vehicle(**state) -> VehicleState:
    config = VehicleConfig.model_validate(
        {
            "id": "bike-1",
            "type": "e_cargo_bike",
            "capacity": {"parcels": 40, "kg": 150, "m3": 1.5},
            "range_km": 60,
            "speed_kmh": 15,
            "energy_kwh_per_km": 0.015,
            "shifts": {"mon": ["07:00-17:00"]},
        }
    )
    return VehicleState(
        config=config,
        **{"status": VehicleStatus.AVAILABLE, "battery_pct": None, "busy_route": None, **state},
    )


def test_a_free_vehicle_as_the_solver_sees_it() -> None:
    spec = domain.vehicle_spec(vehicle(battery_pct=50), now=T0, timezone="Europe/Berlin")
    assert spec is not None
    assert spec.range_km == 30  # half charged
    assert spec.available_min == 7 * 60  # 10:00 to 17:00 Berlin time
    full = domain.vehicle_spec(vehicle(), now=T0, timezone="Europe/Berlin")
    assert full is not None and full.range_km == 60


def charging_with_breaks(**state) -> VehicleState:
    v = vehicle(**state)
    config = {
        **v.config.model_dump(),
        "charge_kw": 1.8,  # 1.8 kW / 0.015 kWh per km: 120 km an hour, 2 km a minute
        "charge_at_shift_start_pct": 40,
        "breaks": {"after_hours": 4.5, "minutes": 30},
    }
    return VehicleState(
        config=VehicleConfig.model_validate(config),
        status=v.status,
        battery_pct=v.battery_pct,
        busy_route=v.busy_route,
        since=v.since,
    )


def test_charging_and_the_break_rule_as_the_solver_sees_them() -> None:
    # T0 is 10:00 in Berlin, three hours into the 07:00 shift
    spec = domain.vehicle_spec(charging_with_breaks(), now=T0, timezone="Europe/Berlin")
    assert spec is not None
    assert spec.range_km == 24 and spec.full_range_km == 60  # 40 % until telemetry says
    assert spec.charge_km_per_min == pytest.approx(2.0)
    assert (spec.break_after_min, spec.break_min) == (270, 30)
    # dispatch cannot tell when a break was taken: all three hours count ...
    assert spec.worked_min == pytest.approx(180)
    # ... unless the vehicle has stood free at the hub for a break's length
    rested = charging_with_breaks(since=T0 - timedelta(minutes=30), battery_pct=90)
    spec = domain.vehicle_spec(rested, now=T0, timezone="Europe/Berlin")
    assert spec is not None and spec.worked_min == 0 and spec.range_km == 54
    busy_until_recently = charging_with_breaks(since=T0 - timedelta(minutes=29))
    spec = domain.vehicle_spec(busy_until_recently, now=T0, timezone="Europe/Berlin")
    assert spec is not None and spec.worked_min == pytest.approx(180)


@pytest.mark.parametrize(
    ("state", "now", "why"),
    [
        ({"busy_route": "r1"}, T0, "on route r1"),
        ({"status": VehicleStatus.CHARGING}, T0, "charging"),
        ({}, T0 + timedelta(hours=8), "off shift"),  # 18:00 Berlin
        ({}, T0 + timedelta(days=1), "off shift"),  # Tuesday: no shift
    ],
)
def test_vehicles_that_cannot_take_a_route(state, now, why) -> None:
    v = vehicle(**state)
    assert domain.vehicle_spec(v, now=now, timezone="Europe/Berlin") is None
    assert domain.why_not_free(v, now=now, timezone="Europe/Berlin") == why


def test_shift_minutes_count_real_time_on_daylight_saving_days() -> None:
    from services.dispatch.fleet import shift_minutes_left

    config = vehicle().config.model_copy(update={"shifts": {"sun": ["00:00-06:00"]}})
    # Sunday 2026-10-25, Berlin: clocks go back at 03:00 CEST -> 02:00 CET.
    # From 01:00 CEST (23:00 UTC) to 06:00 CET (05:00 UTC) is 6 hours, not 5.
    before = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    assert shift_minutes_left(config, before, "Europe/Berlin") == 6 * 60
    assert shift_minutes_left(config, before, "Not/AZone") == 0  # UTC: Saturday 23:00
