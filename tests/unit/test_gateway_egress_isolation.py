"""The gateway's egress tells each carrier only its own: a property over mixed sequences of
several carriers' booking outcomes and routes that consolidate their stops.

The platform's events are generated as booking and dispatch would publish them for a
mixed sequence of carriers' commands (requests, cancellations, check-ins, and commands in
another carrier's name, which booking refuses for the carrier that sent them): routes
mix every carrier's stops, complete some and fail others, and return some stops. They go
through what the gateway does with them (``booking_views``; ``STOP_UPDATES``,
``resolve`` over the stops remembered from every ``RoutePlanned`` so far,
``status_views``; ``PASSED_ON`` for dispatch's per-stop ``StopUpdated``, planned with ETA,
ETA changed, delivered with the proof (where, to whom), failed, returned), and every
view is checked: it goes to the carrier whose booking it is,
and nothing in it (ids, references, stop ids, coordinates) is another carrier's.

Every carrier's ids are made distinct on purpose (stop ids are the carrier's own and
could collide for real: ``s1`` is anyone's), so a leak shows as a string or number of
another carrier's in what one carrier is told.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.booking import (
    BookingCancelled,
    BookingCommandRejected,
    BookingConfirmed,
    BookingRejected,
    Consignment,
    ConsignmentCheckedIn,
)
from contracts.booking.commands import booking_id_for
from contracts.booking.events import CommandRejectionReason, RejectionReason
from contracts.common import GeoPoint
from contracts.dispatch import (
    RouteCompleted,
    RoutePlanned,
    RouteStarted,
    RouteStop,
    StopProgress,
    StopRef,
    StopReturned,
    StopUpdated,
)
from contracts.envelope import Payload
from contracts.fleet import ProofOfDelivery
from services.gateway import egress
from tests.support.dispatch import HUB_LOCATION, hub_summary
from tests.support.hubs import TEST_HUB

CARRIERS = ("acme", "bravo", "cargo")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass
class Booking:
    carrier: str
    reference: str
    stops: list[tuple[str, GeoPoint]]

    @property
    def booking_id(self) -> str:
        return booking_id_for(self.carrier, self.reference)


@dataclass
class World:
    """What booking and dispatch published, and what each carrier owns."""

    bookings: list[Booking] = field(default_factory=list)
    events: list[Payload] = field(default_factory=list)

    def owned(self, carrier: str) -> tuple[set[str], set[float]]:
        """The strings and coordinates that are this carrier's alone."""
        strings, numbers = {carrier}, set()
        for b in self.bookings:
            if b.carrier == carrier:
                strings |= {b.reference, b.booking_id}
                for stop_id, at in b.stops:
                    strings |= {stop_id, recipient(stop_id)}
                    numbers |= {at.lat, at.lon}
        return strings, numbers


def recipient(stop_id: str) -> str:
    """Who signed for a stop (the carrier's customer): in its proof of delivery."""
    return f"{stop_id}-recipient"


def consignment(stops: list[tuple[str, GeoPoint]]) -> Consignment:
    return Consignment.model_validate(
        {
            "parcel_count": len(stops),
            "weight_kg": 5.0 * len(stops),
            "volume_m3": 0.1 * len(stops),
            "depot": {"lat": 52.40, "lon": 13.10},
            "stops": [{"stop_id": s, "parcels": 1, "location": at.model_dump()} for s, at in stops],
        }
    )


# one step of the sequence: (kind, carrier index, argument)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["request", "request", "rejected", "cancel", "check_in", "forged", "route", "return"]
        ),
        st.integers(0, len(CARRIERS) - 1),
        st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=25,
)


def build(steps: list[tuple[str, int, int]]) -> World:
    """The events booking and dispatch publish for ``steps``."""
    world = World()
    coordinate = iter(range(1, 10_000))  # every stop somewhere no other stop is

    def place() -> GeoPoint:
        k = next(coordinate)
        return GeoPoint(lat=52.0 + k * 0.000137, lon=13.0 + k * 0.000071)

    routes = 0
    for n, (kind, who, arg) in enumerate(steps):
        carrier = CARRIERS[who]
        mine = [b for b in world.bookings if b.carrier == carrier]
        at = T0 + timedelta(minutes=n)
        if kind == "request":
            booking = Booking(
                carrier,
                f"{carrier}-ref-{n}",
                [(f"{carrier}-stop-{n}-{i}", place()) for i in range(1 + arg % 3)],
            )
            world.bookings.append(booking)
            world.events.append(
                BookingConfirmed(
                    booking_id=booking.booking_id,
                    carrier_id=carrier,
                    carrier_reference=booking.reference,
                    hub_id=TEST_HUB,
                    slot_start=at,
                    slot_end=at + timedelta(hours=1),
                    hub=hub_summary(),
                    consignment=consignment(booking.stops),
                )
            )
        elif kind == "rejected":
            world.bookings.append(Booking(carrier, f"{carrier}-full-{n}", []))
            world.events.append(
                BookingRejected(
                    booking_id=world.bookings[-1].booking_id,
                    carrier_id=carrier,
                    carrier_reference=world.bookings[-1].reference,
                    hub_id=TEST_HUB,
                    requested_slot_start=at,
                    reason=RejectionReason.DOCKS_FULL,
                    message="the slot is full",
                )
            )
        elif kind in ("cancel", "check_in") and mine:
            booking = mine[arg % len(mine)]
            common: dict[str, Any] = {
                "booking_id": booking.booking_id,
                "carrier_id": carrier,
                "carrier_reference": booking.reference,
                "hub_id": TEST_HUB,
                "slot_start": at,
            }
            if kind == "cancel":
                world.events.append(BookingCancelled(**common, late=bool(arg % 2)))
            else:
                world.events.append(ConsignmentCheckedIn(**common, checked_in_at=at))
        elif kind == "forged":
            # a command in another carrier's name: the ingress refuses it on the sender's
            # topic; were it forwarded, booking would answer the carrier it names, which
            # must then be that carrier's own answer about its own reference
            named = CARRIERS[(who + 1 + arg % (len(CARRIERS) - 1)) % len(CARRIERS)]
            theirs = [b for b in world.bookings if b.carrier == named]
            reference = theirs[arg % len(theirs)].reference if theirs else f"{named}-ref-x{n}"
            world.events.append(
                BookingCommandRejected(
                    command_type="microhub.booking.cancellation_requested.v1",
                    carrier_id=named,
                    carrier_reference=reference,
                    hub_id=TEST_HUB,
                    booking_id=booking_id_for(named, reference),
                    reason=CommandRejectionReason.UNKNOWN_BOOKING,
                    message="no such booking",
                )
            )
        elif kind == "route":
            world.events += route(world, f"wave-{n}-veh-{routes}", arg, at)
            routes += 1
        elif kind == "return" and mine:
            booking = mine[arg % len(mine)]
            if booking.stops:
                stop_id, _ = booking.stops[arg % len(booking.stops)]
                world.events.append(
                    StopReturned(
                        hub_id=TEST_HUB,
                        booking_id=booking.booking_id,
                        carrier_id=carrier,
                        stop_id=stop_id,
                        attempts=1 + arg % 3,
                        reason="nobody home",
                    )
                )
                world.events.append(
                    stop_updated(booking, stop_id, StopProgress.RETURNED, at, reason="refused")
                )
    return world


def stop_updated(
    booking: Booking,
    stop_id: str,
    status: StopProgress,
    at: datetime,
    *,
    route_id: str | None = None,
    **fields: Any,
) -> StopUpdated:
    """Dispatch's per-stop record of one of ``booking``'s stops."""
    return StopUpdated(
        hub_id=TEST_HUB,
        carrier_id=booking.carrier,
        booking_id=booking.booking_id,
        stop_id=stop_id,
        status=status,
        at=at,
        route_id=route_id,
        **fields,
    )


def route(world: World, route_id: str, arg: int, at: datetime) -> Iterator[Payload]:
    """A route over every carrier's stops so far (several carriers on one vehicle),
    started, and completed with some stops failed."""
    stops = [(b, s, loc) for b in world.bookings for s, loc in b.stops]
    if not stops:
        return
    stops = stops[arg % len(stops) :] + stops[: arg % len(stops)]
    plan = RoutePlanned(
        route_id=route_id,
        hub_id=TEST_HUB,
        vehicle_id=f"veh-{arg}",
        city_id="testcity",
        vehicle_type="e_cargo_bike",
        wave_id="wave-1",
        hub_location=GeoPoint(**HUB_LOCATION),
        stops=[
            RouteStop(
                sequence=i,
                booking_id=b.booking_id,
                carrier_id=b.carrier,
                stop_id=s,
                location=loc,
                parcels=1,
                weight_kg=5.0,
                volume_m3=0.1,
            )
            for i, (b, s, loc) in enumerate(stops, 1)
        ],
        load_parcels=len(stops),
        load_kg=5.0 * len(stops),
        load_m3=0.1 * len(stops),
        planned_km=10.0,
        planned_duration_min=60,
        solver="test",
        objective_value=10.0,
    )
    yield plan
    # each stop planned with its ETA, and (every other one) an ETA changed: one per stop
    for i, (b, s, _) in enumerate(stops, 1):
        eta = at + timedelta(minutes=5 * i)
        yield stop_updated(
            b, s, StopProgress.PLANNED, at, route_id=route_id, vehicle_id=plan.vehicle_id, eta=eta
        )
        if (arg + i) % 2:
            late = eta + timedelta(minutes=15)
            yield stop_updated(b, s, StopProgress.ETA_CHANGED, at, route_id=route_id, eta=late)
    yield RouteStarted(
        route_id=route_id, hub_id=TEST_HUB, vehicle_id=plan.vehicle_id, started_at=at
    )
    refs = [StopRef(booking_id=b.booking_id, stop_id=s) for b, s, _ in stops]
    done = at + timedelta(minutes=30)
    for i, (b, s, loc) in enumerate(stops):
        if (arg >> i) % 2 == 0:  # delivered, with where and to whom
            proof = ProofOfDelivery(at=done, location=loc, recipient_name=recipient(s))
            yield stop_updated(b, s, StopProgress.DELIVERED, done, route_id=route_id, proof=proof)
        else:
            yield stop_updated(
                b, s, StopProgress.FAILED, done, route_id=route_id, reason="no access", attempts=1
            )
    yield RouteCompleted(
        route_id=route_id,
        hub_id=TEST_HUB,
        vehicle_id=plan.vehicle_id,
        city_id="testcity",
        vehicle_type="e_cargo_bike",
        completed_at=at + timedelta(hours=1),
        planned_km=10.0,
        actual_km=11.0,
        delivered=[r for i, r in enumerate(refs) if (arg >> i) % 2 == 0],
        failed=[r for i, r in enumerate(refs) if (arg >> i) % 2 == 1],
    )


def egress_views(events: list[Payload]) -> list[egress.View]:
    """What the gateway tells carriers for these events, in order (its handlers, without
    Kafka or a database: the stops of every ``RoutePlanned`` are remembered)."""
    known: list[egress.KnownStop] = []
    views: list[egress.View] = []
    for n, payload in enumerate(events):
        at = T0 + timedelta(seconds=n)
        passed_on = egress.PASSED_ON.get(type(payload))
        if passed_on is not None:
            views += passed_on(payload)
            continue
        mapping = egress.STOP_UPDATES.get(type(payload))
        if mapping is None:
            views += egress.booking_views(payload)
            continue
        if isinstance(payload, RoutePlanned):
            known += [
                egress.KnownStop(
                    payload.route_id,
                    s.booking_id,
                    s.stop_id,
                    s.carrier_id,
                    payload.hub_id,
                    s.parcels,
                )
                for s in payload.stops
            ]
        views += egress.status_views(egress.resolve(mapping(payload, at), known), at)
    return views


def strings_and_numbers(value: Any) -> Iterator[Any]:
    """Every leaf of a JSON value, and every key."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings_and_numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_and_numbers(v)
    else:
        yield value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_no_carrier_is_told_anything_of_another_carriers(
    steps: list[tuple[str, int, int]],
) -> None:
    world = build(steps)
    views = egress_views(world.events)
    owned = {c: world.owned(c) for c in CARRIERS}
    booking_owner = {b.booking_id: b.carrier for b in world.bookings}
    for view in views:
        data = json.loads(view.payload.model_dump_json())
        # addressed to the carrier the record is about, keyed by its own booking
        assert data["carrier_id"] == view.carrier_id
        assert booking_owner.get(view.key, view.carrier_id) == view.carrier_id
        leaves = set(strings_and_numbers(data))
        text = view.payload.model_dump_json()
        for other in CARRIERS:
            if other == view.carrier_id:
                continue
            strings, numbers = owned[other]
            assert not {s for s in strings if s in text}, (view, other)
            assert not (numbers & {v for v in leaves if isinstance(v, float)}), (view, other)


def test_a_shared_route_tells_each_carrier_of_its_own_stops_only() -> None:
    """The example the property generalises: two carriers on one route, each told of its
    own stops (planned with an ETA, out for delivery, delivered or failed), nothing else."""
    world = build([("request", 0, 1), ("request", 1, 2), ("route", 0, 1), ("return", 1, 0)])
    views = egress_views(world.events)
    told: dict[str, list[tuple[str, str]]] = {}
    for view in views:
        data = view.payload.model_dump()
        told.setdefault(view.carrier_id, []).append(
            (str(data.get("state", "")), data.get("stop_id", ""))
        )
    acme = [(s, stop) for s, stop in told["acme"] if stop]
    bravo = [(s, stop) for s, stop in told["bravo"] if stop]
    assert acme and all(stop.startswith("acme-") for _, stop in acme)
    assert bravo and all(stop.startswith("bravo-") for _, stop in bravo)
    # acme's 2 stops and bravo's 3: each planned, out for delivery, then done
    assert sorted(s for s, _ in acme).count("planned") == 2
    assert sorted(s for s, _ in bravo).count("planned") == 3
    assert ("returned", "bravo-stop-1-0") in bravo
    # and dispatch's own per-stop records, unchanged: acme's delivered ones with their
    # proof (where, to whom), never one of bravo's
    updates = [v.payload for v in views if isinstance(v.payload, StopUpdated)]
    acme_updates = [u for u in updates if u.carrier_id == "acme"]
    assert {u.stop_id for u in acme_updates} == {"acme-stop-0-0", "acme-stop-0-1"}
    assert all(v.carrier_id == v.payload.carrier_id for v in views if v.payload in updates)
    delivered = [u for u in acme_updates if u.status is StopProgress.DELIVERED]
    assert all(u.proof and u.proof.recipient_name == recipient(u.stop_id) for u in delivered)
