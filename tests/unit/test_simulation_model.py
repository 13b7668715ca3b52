"""The simulated city's decisions are pure and seeded: same seed, same messages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.booking import (
    BookingCancellationRequested,
    BookingRequested,
    BookingRequestedV2,
    CheckInReported,
)
from contracts.common import GeoPoint
from contracts.dispatch import RoutePlanned, RouteStop
from contracts.fleet import RouteFinished, StopDeliveredV2, StopFailedV2, VehicleStatusChanged
from services.booking.catalogue import load_catalogue
from services.booking.slot_grid import slots_on
from services.simulation import model
from services.simulation.driver import next_monday

HUBS = {h.id: h for h in load_catalogue(None)}
MONDAY = next_monday(datetime(2026, 11, 21, tzinfo=UTC).date())


def _day(hub_id: str):
    hub = HUBS[hub_id]
    return hub, datetime.combine(MONDAY, time(0), tzinfo=hub.zone)


def hub_day(seed: int, hub, day: datetime) -> list[model.Action]:
    """The simulation's day, with the grid the API would publish for it."""
    return model.hub_day(seed, hub, day, slots_on(hub, day.date()))


def _route(stops: int, vehicle_type: str = "e_cargo_bike") -> RoutePlanned:
    return RoutePlanned(
        route_id="ber-westhafen:w00001:ber-wh-bike-01",
        hub_id="ber-westhafen",
        vehicle_id="ber-wh-bike-01",
        city_id="berlin",
        vehicle_type=vehicle_type,
        wave_id="w00001",
        hub_location=GeoPoint(lat=52.538, lon=13.341),
        stops=[
            RouteStop(
                sequence=i,
                booking_id=f"b{i}",
                carrier_id="parcelco",
                stop_id=f"s{i}",
                location=GeoPoint(lat=52.54, lon=13.35),
                parcels=1,
                weight_kg=2.0,
                volume_m3=0.03,
            )
            for i in range(1, stops + 1)
        ],
        load_parcels=stops,
        load_kg=2.0 * stops,
        load_m3=0.03 * stops,
        planned_km=12.5,
        planned_duration_min=90,
        solver="greedy-fallback",
        objective_value=12.5,
    )


def test_the_same_seed_gives_the_same_day_and_another_seed_another() -> None:
    hub, day = _day("ber-westhafen")
    assert hub_day(7, hub, day) == hub_day(7, hub, day)
    assert hub_day(7, hub, day) != hub_day(8, hub, day)


def test_a_day_requests_real_slots_the_evening_before_and_checks_in_at_the_slot() -> None:
    hub, day = _day("ber-suedkreuz")
    actions = hub_day(3, hub, day)
    requests = [
        m
        for a in actions
        for _, m, _ in a.messages
        if isinstance(m, BookingRequested | BookingRequestedV2)
    ]
    slots = set(slots_on(hub, MONDAY))
    checked_in = {
        m.carrier_reference
        for a in actions
        for _, m, _ in a.messages
        if isinstance(m, CheckInReported)
    }
    # every request that checks in booked a slot of the grid (the off-grid ones are
    # turned away: test_carriers_ask_too_much_of_full_slots_and_now_and_then_off_the_grid)
    assert checked_in and all(
        r.slot_start in slots for r in requests if r.carrier_reference in checked_in
    )
    assert all(
        r.consignment.parcel_count == sum(s.parcels for s in r.consignment.stops) for r in requests
    )
    for action in actions:
        for at, message, _ in action.messages:
            if isinstance(message, BookingRequested | BookingRequestedV2):
                assert at < day  # booked the evening before
            if isinstance(message, CheckInReported):
                slot = next(
                    r.slot_start
                    for r in requests
                    if r.carrier_reference == message.carrier_reference
                )
                assert slot <= at <= slot + timedelta(minutes=21)


def test_a_booking_is_checked_in_or_cancelled_or_missed_never_two_of_them() -> None:
    hub, day = _day("ber-westhafen")
    fates: dict[str, list[str]] = {}
    for action in hub_day(11, hub, day):
        for _, message, _ in action.messages:
            if isinstance(message, CheckInReported | BookingCancellationRequested):
                fates.setdefault(message.carrier_reference, []).append(type(message).__name__)
    assert fates and all(len(f) == 1 for f in fates.values())


def test_sundays_are_quiet_and_poison_is_counted_per_day() -> None:
    hub = HUBS["ber-westhafen"]
    sunday = datetime.combine(MONDAY - timedelta(days=1), time(0), tzinfo=hub.zone)
    assert hub_day(1, hub, sunday) == []
    poison = model.poison(1, sunday, 2, list(HUBS))
    assert len(poison) == 2 and all(isinstance(a.messages[0][1], bytes) for a in poison)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6), stops=st.integers(1, 30))
def test_a_vehicle_reports_every_stop_once_then_finishes(seed: int, stops: int) -> None:
    route = _route(stops)
    at = datetime(2026, 11, 23, 9, tzinfo=UTC)
    start, finish = model.drive(seed, route, at)
    assert start.time > at and isinstance(start.messages[0][1], VehicleStatusChanged)
    reports = [m for _, m, _ in finish.messages]
    assert isinstance(reports[-1], RouteFinished)
    done = [
        (m.booking_id, m.stop_id)
        for m in reports[:-1]
        if isinstance(m, StopDeliveredV2 | StopFailedV2)
    ]
    assert sorted(done) == sorted((s.booking_id, s.stop_id) for s in route.stops)
    times = [t for t, _, _ in finish.messages]
    assert times == sorted(times) and times[0] > start.time
    assert 0.98 * route.planned_km <= reports[-1].actual_km <= 1.12 * route.planned_km
    assert model.drive(seed, route, at) == [start, finish]


def test_diesel_vans_report_no_energy() -> None:
    _, finish = model.drive(1, _route(3, "diesel_van"), datetime(2026, 11, 23, tzinfo=UTC))
    assert finish.messages[-1][1].energy_kwh is None


def test_carriers_ask_too_much_of_full_slots_and_now_and_then_off_the_grid() -> None:
    """What the hub must turn away: one request more than a slot has docks (only when all
    of its docks are asked for), and slot times off the grid; neither is followed by a
    check-in or a cancellation."""
    overflowing = off_grid = 0
    for hub_id in ("ber-westhafen", "osl-alnabru"):
        hub = HUBS[hub_id]
        for d in range(14):
            day = datetime.combine(MONDAY + timedelta(days=d), time(0), tzinfo=hub.zone)
            grid = set(slots_on(hub, day.date()))
            requests: dict[str, BookingRequested | BookingRequestedV2] = {}
            followed: set[str] = set()
            for action in hub_day(7, hub, day):
                for _, m, _ in action.messages:
                    if isinstance(m, BookingRequested | BookingRequestedV2):
                        requests[m.carrier_reference] = m
                    elif isinstance(m, CheckInReported | BookingCancellationRequested):
                        followed.add(m.carrier_reference)
            per_slot: dict[datetime, list[str]] = {}
            for ref, r in requests.items():
                if r.slot_start not in grid:
                    off_grid += 1
                    assert ref not in followed
                else:
                    per_slot.setdefault(r.slot_start, []).append(ref)
            for refs in per_slot.values():
                assert len(refs) <= hub.docks_per_slot + 1
                if len(refs) > hub.docks_per_slot:
                    overflowing += 1
                    assert refs[-1] not in followed  # the last one asked is turned away
    assert overflowing > 0 and off_grid > 0


def test_some_carriers_book_with_windows_and_returns_and_vehicles_send_proof() -> None:
    requests = [
        m
        for hub_id in ("ber-westhafen", "osl-alnabru")
        for d in range(3)
        for a in hub_day(
            5,
            HUBS[hub_id],
            datetime.combine(MONDAY + timedelta(days=d), time(0), tzinfo=HUBS[hub_id].zone),
        )
        for _, m, _ in a.messages
        if isinstance(m, BookingRequested | BookingRequestedV2)
    ]
    v2 = [r for r in requests if isinstance(r, BookingRequestedV2)]
    assert 0 < len(v2) < len(requests)
    stops = [s for r in v2 for s in r.consignment.stops]
    assert any(s.window is not None for s in stops)
    assert any(s.kind.value == "pickup" for s in stops)
    for r in v2:
        for s in r.consignment.stops:
            if s.window is not None:
                assert s.window.start >= r.slot_start + timedelta(hours=1)
    _, finish = model.drive(3, _route(5), datetime(2026, 11, 23, 9, tzinfo=UTC))
    reports = [m for _, m, _ in finish.messages if isinstance(m, StopDeliveredV2)]
    assert reports and all(r.proof.photo_ref and r.proof.recipient_name for r in reports)
