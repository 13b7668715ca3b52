"""What the simulated city does, decided from the seed alone (pure: no I/O, no clock).

Everything random draws from a ``random.Random`` seeded by the simulation seed and a
stable name (the hub and day, or the route id), so an outcome never depends on the order
in which the services happened to answer: the same seed and the same ``RoutePlanned``
events give the same messages.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from contracts.booking import (
    BookingCancellationRequested,
    BookingRequested,
    BookingRequestedV2,
    CheckInReported,
    Consignment,
    ConsignmentV2,
    DeliveryStop,
    DeliveryStopV2,
    StopKind,
    TimeWindow,
)
from contracts.common import GeoPoint
from contracts.dispatch import RoutePlanned
from contracts.envelope import Payload
from contracts.fleet import (
    ProofOfDelivery,
    RouteFinished,
    StopDeliveredV2,
    StopFailedV2,
    VehicleStatus,
    VehicleStatusChanged,
    VehicleType,
)
from contracts.hubs import HubConfig

CARRIERS = ("parcelco", "swiftpost", "nordfrakt")
RECIPIENTS = ("A. Schulz", "M. Berg", "J. Hansen", "L. Nowak", "S. Olsen", "reception", "neighbour")
FAIL_REASONS = ("recipient_absent", "access_denied", "address_not_found")
# kWh per km drawn from the battery, typical of the vehicle class (diesel: not measured)
ENERGY_KWH_PER_KM = {
    VehicleType.E_CARGO_BIKE: 0.015,
    VehicleType.E_TRIKE: 0.025,
    VehicleType.E_VAN: 0.24,
}


@dataclass(frozen=True)
class Rates:
    """Shares of a hub-day's traffic. Defaults: a plausible working day, bounded volume."""

    slot_fill: float = 0.25  # chance that a dock of a slot is requested
    duplicate: float = 0.03  # a carrier's retry of the same request (new event id)
    redelivery: float = 0.01  # the very same record sent twice (same event id)
    early_cancel: float = 0.04
    late_cancel: float = 0.02
    no_show: float = 0.03
    stop_failure: float = 0.04
    malformed_per_day: int = 2  # poison records per day, to the commands and telemetry topics
    # the day's first slot is the one every carrier wants ...
    peak_fill: float = 0.9
    # ... and when all of a slot's docks are asked for, one more carrier may try it: the
    # hub turns it away (slot_docks_full); the carrier sends nothing more for it
    overflow: float = 0.5
    # a carrier system's rounding bug: a slot time off the hub's grid (slot_not_on_grid)
    off_grid_per_day: float = 0.3
    # requests sent as microhub.booking.requested.v2, and of their stops: a time window
    # (1-2 hours, starting 1-3 hours after the slot), or a pickup (a return to collect)
    v2: float = 0.4
    windowed_stop: float = 0.3
    pickup_stop: float = 0.1


@dataclass(frozen=True)
class Action:
    """Messages to send at one simulated instant: ``booking`` ones to the carrier's own
    commands topic (key: hub), ``telemetry`` ones to the telemetry topic (key: vehicle)."""

    time: datetime
    kind: Literal["booking", "telemetry", "poison"]
    hub_id: str
    key: str
    messages: tuple[tuple[datetime, Payload | bytes, str | None], ...]
    # (envelope time, payload or raw poison bytes, event id to reuse: a redelivery)
    label: str = ""
    # whose system sends it: a carrier's commands go to that carrier's own topic
    carrier: str | None = None


def _rng(seed: int, *names: object) -> random.Random:
    return random.Random(f"{seed}:" + ":".join(str(n) for n in names))


def consignment(rng: random.Random, hub: HubConfig) -> Consignment:
    stops = []
    for i in range(rng.randint(2, 8)):
        stops.append(
            DeliveryStop(
                stop_id=f"s{i + 1}",
                location=GeoPoint(
                    lat=round(hub.location.lat + rng.uniform(-0.025, 0.025), 5),
                    lon=round(hub.location.lon + rng.uniform(-0.04, 0.04), 5),
                ),
                parcels=rng.randint(1, 3),
            )
        )
    parcels = sum(s.parcels for s in stops)
    # the carrier's depot lies 10-25 km outside, roughly towards the ring road
    depot = GeoPoint(
        lat=round(hub.location.lat + rng.choice((-1, 1)) * rng.uniform(0.08, 0.15), 5),
        lon=round(hub.location.lon + rng.choice((-1, 1)) * rng.uniform(0.12, 0.25), 5),
    )
    return Consignment(
        parcel_count=parcels,
        weight_kg=round(parcels * rng.uniform(1.5, 4.0), 1),
        volume_m3=round(parcels * rng.uniform(0.02, 0.05), 3),
        stops=stops,
        depot=depot,
    )


def with_terms(
    rng: random.Random, request: BookingRequested, rates: Rates
) -> BookingRequested | BookingRequestedV2:
    """Some carriers' systems book with v2: windows on some stops, a return to collect."""
    if rng.random() >= rates.v2:
        return request
    c = request.consignment
    stops = []
    for stop in c.stops:
        draw = rng.random()
        window = None
        kind = StopKind.DELIVERY
        if draw < rates.windowed_stop:
            start = request.slot_start + timedelta(minutes=rng.choice((60, 90, 120, 180)))
            window = TimeWindow(start=start, end=start + timedelta(minutes=rng.choice((60, 120))))
        elif draw < rates.windowed_stop + rates.pickup_stop:
            kind = StopKind.PICKUP
        stops.append(
            DeliveryStopV2(
                stop_id=stop.stop_id,
                location=stop.location,
                parcels=stop.parcels,
                kind=kind,
                window=window,
            )
        )
    return BookingRequestedV2(
        carrier_id=request.carrier_id,
        carrier_reference=request.carrier_reference,
        hub_id=request.hub_id,
        slot_start=request.slot_start,
        consignment=ConsignmentV2(
            parcel_count=c.parcel_count,
            weight_kg=c.weight_kg,
            volume_m3=c.volume_m3,
            stops=stops,
            depot=c.depot,
        ),
    )


def hub_day(
    seed: int, hub: HubConfig, day: datetime, slots: list[datetime], rates: Rates = Rates()
) -> list[Action]:
    """The carriers' traffic for one hub on one local day: requests the evening before
    (21:00 local), some retried, some cancelled early or late, check-ins at the slot. The
    first slot is the popular one; a fully asked-for slot may draw one request too many,
    and now and then a carrier asks for a time off the hub's grid: both are turned away.
    ``slots``: the hub's published slot grid that day (`GET /v1/hubs/{hub}/slots`)."""
    local_day = day.date()
    if not slots:
        return []
    rng = _rng(seed, hub.id, local_day.isoformat())
    evening = datetime.combine(
        local_day - timedelta(days=1), datetime.min.time(), tzinfo=hub.zone
    ) + timedelta(hours=21)
    actions: list[Action] = []
    n = 0

    def turned_away(slot_start: datetime) -> None:
        """A request the hub will reject: the carrier follows it with nothing."""
        nonlocal n
        n += 1
        request = BookingRequested(
            carrier_id=rng.choice(CARRIERS),
            carrier_reference=f"{hub.id}-{slot_start.astimezone(hub.zone):%m%d%H%M}-{n:03d}",
            hub_id=hub.id,
            slot_start=slot_start,
            consignment=consignment(rng, hub),
        )
        at = evening + timedelta(seconds=n)
        event_id = f"sim-{seed}-{hub.id}-{local_day:%Y%m%d}-{n:03d}"
        actions.append(
            Action(
                at, "booking", hub.id, hub.id, ((at, request, event_id),), "request",
                request.carrier_id,
            )
        )  # fmt: skip

    for index, slot in enumerate(slots):
        fill = rates.peak_fill if index == 0 else rates.slot_fill
        asked = 0
        for _ in range(hub.docks_per_slot):
            if rng.random() >= fill:
                continue
            n += 1
            asked += 1
            carrier = rng.choice(CARRIERS)
            ref = f"{hub.id}-{slot.astimezone(hub.zone):%m%d%H%M}-{n:03d}"
            request = with_terms(
                rng,
                BookingRequested(
                    carrier_id=carrier,
                    carrier_reference=ref,
                    hub_id=hub.id,
                    slot_start=slot,
                    consignment=consignment(rng, hub),
                ),
                rates,
            )
            at = evening + timedelta(seconds=n)
            event_id = f"sim-{seed}-{hub.id}-{local_day:%Y%m%d}-{n:03d}"
            messages: list[tuple[datetime, Payload | bytes, str | None]] = [(at, request, event_id)]
            if rng.random() < rates.duplicate:
                messages.append((at, request, event_id + "-retry"))
            if rng.random() < rates.redelivery:
                messages.append((at, request, event_id))
            actions.append(
                Action(at, "booking", hub.id, hub.id, tuple(messages), "request", carrier)
            )
            fate = rng.random()
            cancel = BookingCancellationRequested(
                carrier_id=carrier, carrier_reference=ref, hub_id=hub.id, reason="order withdrawn"
            )
            if fate < rates.early_cancel:
                t = at + timedelta(minutes=30)
                actions.append(
                    Action(t, "booking", hub.id, hub.id, ((t, cancel, None),), "cancel", carrier)
                )
            elif fate < rates.early_cancel + rates.late_cancel:
                t = slot - timedelta(minutes=rng.randint(20, 60))
                actions.append(
                    Action(t, "booking", hub.id, hub.id, ((t, cancel, None),), "cancel", carrier)
                )
            elif fate < rates.early_cancel + rates.late_cancel + rates.no_show:
                pass  # the truck never comes: booking marks a no-show on a later command
            else:
                t = slot + timedelta(minutes=rng.randint(0, 20), seconds=n % 60)
                check_in = CheckInReported(carrier_id=carrier, carrier_reference=ref, hub_id=hub.id)
                actions.append(
                    Action(
                        t, "booking", hub.id, hub.id, ((t, check_in, None),), "check_in", carrier
                    )
                )
        if asked == hub.docks_per_slot and rng.random() < rates.overflow:
            turned_away(slot)  # every dock is taken (early cancellations come later)
    if rng.random() < rates.off_grid_per_day:
        turned_away(rng.choice(slots) + timedelta(minutes=rng.choice((5, 10, 20))))
    return actions


def poison(seed: int, day: datetime, count: int, hub_ids: list[str]) -> list[Action]:
    """Malformed records a buggy client might send: they must end up in a DLQ."""
    rng = _rng(seed, "poison", day.date().isoformat())
    actions = []
    for i in range(count):
        hub_id = rng.choice(hub_ids)
        t = day + timedelta(hours=rng.randint(8, 16), minutes=rng.randint(0, 59))
        body = rng.choice(
            (
                b"\x00\xffnot json",
                b'{"specversion": "1.0", "type": "microhub.booking.requested.v1"}',
                b'{"half": ',
            )
        )
        topic_kind = "booking" if i % 2 == 0 else "telemetry"
        # a carrier's system sends the malformed commands (each carrier in turn)
        turn = (day.toordinal() + i // 2) % len(CARRIERS)
        carrier = CARRIERS[turn] if topic_kind == "booking" else None
        key = f"{topic_kind}:{hub_id}"
        actions.append(Action(t, "poison", hub_id, key, ((t, body, None),), topic_kind, carrier))
    return actions


def drive(
    seed: int, planned: RoutePlanned, planned_at: datetime, rates: Rates = Rates()
) -> list[Action]:
    """Telemetry of a vehicle driving a planned route: ``ON_ROUTE`` after loading, then
    (when it is back) each stop delivered or failed at its time, and ``RouteFinished``."""
    rng = _rng(seed, planned.route_id)
    start = planned_at + timedelta(minutes=rng.randint(8, 15))
    duration = timedelta(minutes=max(planned.planned_duration_min, 5) * rng.uniform(0.95, 1.2))
    finish = start + duration
    common = {"vehicle_id": planned.vehicle_id, "hub_id": planned.hub_id}
    out = [
        Action(
            start,
            "telemetry",
            planned.hub_id,
            planned.vehicle_id,
            (
                (
                    start,
                    VehicleStatusChanged(
                        **common,
                        status=VehicleStatus.ON_ROUTE,
                        battery_pct=round(rng.uniform(70, 100), 1),
                    ),
                    None,
                ),
            ),
            "start",
        )
    ]
    back: list[tuple[datetime, Payload | bytes, str | None]] = []
    step = duration / (len(planned.stops) + 1)
    for i, stop in enumerate(planned.stops, start=1):
        t = start + step * i
        ref = {"route_id": planned.route_id, "booking_id": stop.booking_id, "stop_id": stop.stop_id}
        # the driver's app: when and where, with a name and a photo at the door
        where = GeoPoint(lat=stop.location.lat, lon=stop.location.lon)
        photo = f"pod/{planned.route_id}/{stop.booking_id[:8]}-{stop.stop_id}.jpg"
        if rng.random() < rates.stop_failure:
            failed = StopFailedV2(
                **common,
                **ref,
                reason=rng.choice(FAIL_REASONS),
                at=t,
                location=where,
                photo_ref=photo,
            )
            back.append((t, failed, None))
        else:
            proof = ProofOfDelivery(
                at=t, location=where, recipient_name=rng.choice(RECIPIENTS), photo_ref=photo
            )
            back.append((t, StopDeliveredV2(**common, **ref, proof=proof), None))
    actual_km = round(planned.planned_km * rng.uniform(0.98, 1.12), 3)
    per_km = ENERGY_KWH_PER_KM.get(planned.vehicle_type)
    energy = round(actual_km * per_km * rng.uniform(0.9, 1.1), 3) if per_km else None
    back.append(
        (
            finish,
            RouteFinished(
                **common, route_id=planned.route_id, actual_km=actual_km, energy_kwh=energy
            ),
            None,
        )
    )
    # the stop reports travel with the finish: one vehicle's records share a partition, so
    # sending them together keeps their order and saves the services a settle round
    out.append(
        Action(finish, "telemetry", planned.hub_id, planned.vehicle_id, tuple(back), "finish")
    )
    return out
