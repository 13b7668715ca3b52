"""Two carriers' bookings on one route, through booking and the gateway on the session's
Kafka: each carrier's events topic, read back whole, holds its own outcomes, delivery
statuses and dispatch's per-stop updates (``stop_updated.v1``: planned with ETA,
delivered with the proof, failed, returned) only, never the other carrier's id,
references, booking ids, stop ids or where its recipients live.

The carriers send requests, a cancellation, check-ins and a command in the other's
name over their own topics; dispatch's events (a route that consolidates both carriers'
stops, its start, its completion with a failed stop, and a return) are published as
dispatch would, from the stops booking confirmed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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
from contracts.fleet import ProofOfDelivery
from services.app.platform import Platform
from services.booking.domain import booking_id_for
from services.runtime.kafka import KafkaCluster
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, own_topic
from tests.support.dispatch import HUB_LOCATION, Publisher
from tests.support.gateway import write_carriers
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue
from tests.support.kafka import KafkaUnderTest, create_topics

UTC_ALL_DAY = {
    "opening_hours": {
        day: ["00:00-23:59"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    },
    "city": {"id": "testcity", "name": "Test City", "country": "DE", "timezone": "UTC"},
    "cancellation_cutoff_minutes": 120,
    "check_in_early_minutes": 120,
}
CARRIERS = ("acme", "bravo")


def next_slot(now: datetime, *, hours: int) -> datetime:
    """A slot ``hours`` after ``now``'s hour; the hub closes at 23:59, so a slot that would
    start at 23:00 is the next day's first."""
    slot = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
    return slot + timedelta(hours=1) if slot.hour == 23 else slot


@pytest.fixture
async def platform(
    settings: Settings, kafka_cluster: KafkaUnderTest, tmp_path: Path
) -> AsyncIterator[Settings]:
    configured = settings.model_copy(
        update={
            "hubs_file": write_catalogue(tmp_path / "hubs.yaml", hub_config(**UTC_ALL_DAY)),
            "carriers_file": write_carriers(tmp_path / "carriers.yaml", *CARRIERS),
            "database_urls": {
                name: f"sqlite+aiosqlite:///{tmp_path / name}.db" for name in ("booking", "gateway")
            },
        }
    )
    await create_topics(configured, kafka_cluster)
    cluster = KafkaCluster(configured, bootstrap=configured.bootstrap_list())
    running = await Platform(
        configured, services=["booking", "gateway"], http=False, cluster=cluster
    ).start()
    try:
        yield configured
    finally:
        await running.stop()


def request(carrier: str, reference: str, slot: datetime, stops: int, seed: int) -> dict[str, Any]:
    """A request whose stop ids and recipients' places are this carrier's alone."""
    return {
        "carrier_id": carrier,
        "carrier_reference": reference,
        "hub_id": TEST_HUB,
        "slot_start": slot.isoformat(),
        "consignment": {
            "parcel_count": stops,
            "weight_kg": 5.0 * stops,
            "volume_m3": 0.2,
            "depot": {"lat": 52.40, "lon": 13.10},
            "stops": [
                {
                    "stop_id": f"{carrier}-stop-{i}",
                    "parcels": 1,
                    "location": {
                        "lat": 52.5 + (seed + i) * 0.001371,
                        "lon": 13.3 + (seed + i) * 0.000917,
                    },
                }
                for i in range(stops)
            ],
        },
    }


def route_over(confirmed: list[dict[str, Any]], route_id: str) -> RoutePlanned:
    """One vehicle for every confirmed stop, the carriers' stops interleaved."""
    stops = [(c["data"], s) for c in confirmed for s in c["data"]["consignment"]["stops"]]
    stops.sort(key=lambda pair: pair[1]["stop_id"].split("-")[-1])
    route_stops = [
        RouteStop(
            sequence=i,
            booking_id=booking["booking_id"],
            carrier_id=booking["carrier_id"],
            stop_id=stop["stop_id"],
            location=GeoPoint(**stop["location"]),
            parcels=stop["parcels"],
            weight_kg=5.0,
            volume_m3=0.1,
        )
        for i, (booking, stop) in enumerate(stops, 1)
    ]
    return RoutePlanned(
        route_id=route_id,
        hub_id=TEST_HUB,
        vehicle_id="bike-1",
        city_id="testcity",
        vehicle_type="e_cargo_bike",
        wave_id="wave-1",
        hub_location=GeoPoint(**HUB_LOCATION),
        stops=route_stops,
        load_parcels=len(route_stops),
        load_kg=5.0 * len(route_stops),
        load_m3=0.1 * len(route_stops),
        planned_km=12.0,
        planned_duration_min=80,
        solver="test",
        objective_value=12.0,
    )


def leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in (k, *leaves(v))]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return [value]


async def test_each_carrier_reads_only_its_own_on_a_shared_route(platform: Settings) -> None:
    settings = platform
    now = datetime.now(UTC)
    slot = next_slot(now, hours=5)
    bootstrap, prefix = settings.bootstrap_list(), settings.kafka_topic_prefix
    senders = {
        c: Carrier(bootstrap, prefix=prefix, carrier_id=c, topic=own_topic(c)) for c in CARRIERS
    }
    readers = {c: TopicReader(bootstrap, settings.topic(own_topic(c, "events"))) for c in CARRIERS}
    async with (
        senders["acme"] as acme,
        senders["bravo"] as bravo,
        readers["acme"] as to_acme,
        readers["bravo"] as to_bravo,
        Publisher(bootstrap, settings.topic) as dispatch,
    ):
        requested = "microhub.booking.requested.v1"
        await acme.send(requested, request("acme", "acme-ref-1", slot, 2, 0), time=now)
        await acme.send(requested, request("acme", "acme-ref-2", slot, 1, 10), time=now)
        await bravo.send(
            requested, request("bravo", "bravo-ref-1", next_slot(slot, hours=1), 3, 20), time=now
        )
        acme_confirmed = await to_acme.wait_count(2, suffix="booking.confirmed.v1", timeout=30)
        [bravo_confirmed] = await to_bravo.wait_count(1, suffix="booking.confirmed.v1", timeout=30)

        # acme cancels its second booking, then cancels and checks in bravo's in bravo's
        # name (both refused on acme's topic); both check in their own (too early)
        await acme.cancel("acme-ref-2", hub_id=TEST_HUB, time=now)
        for command in (
            "microhub.booking.cancellation_requested.v1",
            "microhub.booking.check_in.v1",
        ):
            await acme.send(
                command,
                {"carrier_id": "bravo", "carrier_reference": "bravo-ref-1", "hub_id": TEST_HUB},
                time=now,
            )
        await acme.check_in("acme-ref-1", hub_id=TEST_HUB, time=now)
        await bravo.check_in("bravo-ref-1", hub_id=TEST_HUB, time=now)
        await to_acme.wait_count(1, suffix="booking.cancelled.v1", timeout=30)
        await to_acme.wait_count(2, suffix="command_refused.v1", timeout=30)
        await to_acme.wait_count(1, suffix="command_rejected.v1", timeout=30)
        await to_bravo.wait_count(1, suffix="command_rejected.v1", timeout=30)

        # one route over acme-ref-1's 2 stops and bravo-ref-1's 3, interleaved
        confirmed = [c for c in acme_confirmed if c["data"]["carrier_reference"] == "acme-ref-1"]
        plan = route_over([*confirmed, bravo_confirmed], "wave-1-bike-1")
        assert {s.carrier_id for s in plan.stops} == set(CARRIERS)
        await dispatch.send(plan, time=now)
        await dispatch.send(
            RouteStarted(
                route_id=plan.route_id, hub_id=TEST_HUB, vehicle_id="bike-1", started_at=now
            ),
            time=now,
        )
        refs = [StopRef(booking_id=s.booking_id, stop_id=s.stop_id) for s in plan.stops]
        failed = {"acme-stop-1", "bravo-stop-0"}
        await dispatch.send(
            RouteCompleted(
                route_id=plan.route_id,
                hub_id=TEST_HUB,
                vehicle_id="bike-1",
                city_id="testcity",
                vehicle_type="e_cargo_bike",
                completed_at=now + timedelta(hours=1),
                planned_km=12.0,
                actual_km=13.0,
                delivered=[r for r in refs if r.stop_id not in failed],
                failed=[r for r in refs if r.stop_id in failed],
            ),
            time=now + timedelta(hours=1),
        )
        await dispatch.send(
            StopReturned(
                hub_id=TEST_HUB,
                booking_id=booking_id_for("bravo", "bravo-ref-1"),
                carrier_id="bravo",
                stop_id="bravo-stop-0",
                attempts=1,
                reason="nobody home",
            ),
            time=now + timedelta(hours=2),
        )
        # dispatch's own per-stop records: each stop planned with its ETA, then delivered
        # (with the proof: where, and who signed) or failed; bravo's failed one returned
        for i, stop in enumerate(plan.stops):
            common = {
                "hub_id": TEST_HUB,
                "carrier_id": stop.carrier_id,
                "booking_id": stop.booking_id,
                "stop_id": stop.stop_id,
                "route_id": plan.route_id,
                "vehicle_id": "bike-1",
            }
            planned = StopUpdated(
                **common, status=StopProgress.PLANNED, at=now, eta=now + timedelta(minutes=9 * i)
            )
            await dispatch.send(planned, time=now)
            done = now + timedelta(minutes=50)
            if stop.stop_id in failed:
                outcome = StopUpdated(
                    **common, status=StopProgress.FAILED, at=done, reason="no access", attempts=1
                )
            else:
                proof = ProofOfDelivery(
                    at=done, location=stop.location, recipient_name=f"{stop.stop_id}-recipient"
                )
                outcome = StopUpdated(**common, status=StopProgress.DELIVERED, at=done, proof=proof)
            await dispatch.send(outcome, time=done)
        returned_stop = next(s for s in plan.stops if s.stop_id == "bravo-stop-0")
        await dispatch.send(
            StopUpdated(
                hub_id=TEST_HUB,
                carrier_id="bravo",
                booking_id=returned_stop.booking_id,
                stop_id="bravo-stop-0",
                status=StopProgress.RETURNED,
                at=now + timedelta(hours=2),
                reason="nobody home",
                attempts=1,
            ),
            time=now + timedelta(hours=2),
        )
        await to_acme.wait_count(2 * 2, suffix="stop_updated.v1", timeout=30)
        await to_bravo.wait_count(3 * 2 + 1, suffix="stop_updated.v1", timeout=30)
        # each stop: planned, out for delivery, delivered or failed; bravo's failed one
        # returned too
        await to_acme.wait_count(2 * 3, suffix="delivery_status.v1", timeout=30)
        await to_bravo.wait_count(3 * 3 + 1, suffix="delivery_status.v1", timeout=30)
        told = {"acme": list(to_acme.events), "bravo": list(to_bravo.events)}

    owned: dict[str, tuple[set[str], set[float]]] = {}
    for carrier, confirmations in (("acme", acme_confirmed), ("bravo", [bravo_confirmed])):
        strings = {carrier}
        numbers: set[float] = set()
        for c in confirmations:
            data = c["data"]
            strings |= {data["booking_id"], data["carrier_reference"]}
            for stop in data["consignment"]["stops"]:
                strings |= {stop["stop_id"], f"{stop['stop_id']}-recipient"}
                numbers |= {stop["location"]["lat"], stop["location"]["lon"]}
        owned[carrier] = strings, numbers

    for carrier, records in told.items():
        other = next(c for c in CARRIERS if c != carrier)
        strings, numbers = owned[other]
        for record in records:
            assert record["data"]["carrier_id"] == carrier
            if record["type"].endswith("command_refused.v1"):
                # a refusal repeats the reference the sender itself wrote (here bravo's,
                # which acme named): its own words, not something the platform told it
                record = json.loads(json.dumps(record))
                assert record["data"].pop("carrier_reference") in ("bravo-ref-1",)
            text = json.dumps(record)
            assert not [s for s in strings if s in text], record
            assert not numbers & {v for v in leaves(record) if isinstance(v, float)}, record
        statuses = [r["data"] for r in records if r["type"].endswith("delivery_status.v1")]
        assert {s["stop_id"] for s in statuses} == {
            s.stop_id for s in plan.stops if s.carrier_id == carrier
        }
        # its own stops' updates, every one of them, unchanged: the proof of a delivered
        # one says where and who signed
        updates = [r["data"] for r in records if r["type"].endswith("stop_updated.v1")]
        assert {u["stop_id"] for u in updates} == {
            s.stop_id for s in plan.stops if s.carrier_id == carrier
        }
        for update in updates:
            if update["status"] == "delivered":
                assert update["proof"]["recipient_name"] == f"{update['stop_id']}-recipient"
    returned = [s for s in told["bravo"] if s["data"].get("state") == "returned"]
    assert [r["data"]["stop_id"] for r in returned] == ["bravo-stop-0"]
