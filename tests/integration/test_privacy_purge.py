"""The personal data purge (docs/privacy.md) of booking, dispatch and the gateway, on
PostgreSQL and SQLite: after the retention, delivery coordinates are rounded to ~1 km,
free text is gone, sent outbox rows and kept answers are forgotten; what aggregates need
(statuses, counts, capacity in use, route figures) is intact; before the retention, and
for stops still open, nothing changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from contracts.booking import BookingCancellationRequested, BookingRequested
from contracts.common import GeoPoint
from contracts.envelope import REGISTRY, Payload, new_event
from contracts.fleet import ProofOfDelivery, RouteFinished, StopDeliveredV2, StopFailed
from services.booking import store as booking_store
from services.booking.service import BookingService
from services.dispatch import store as dispatch_store
from services.dispatch.domain import StopStatus
from services.dispatch.service import DispatchService
from services.gateway import store as gateway_store
from services.gateway.service import GatewayService
from services.runtime.settings import Settings
from tests.support.dispatch import bike, checked_in, confirmed, write_fleet
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue
from tests.support.waiting import eventually

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)  # Tuesday 09:00 Berlin, on the hourly grid
PRECISE = [(52.512345, 13.398765), (52.534567, 13.412345)]
SECRET = "call Mrs Example at home, 0170 1234567"


def stops_of(document: dict[str, Any]) -> list[tuple[float, float]]:
    return [(s["location"]["lat"], s["location"]["lon"]) for s in document["stops"]]


def rounded(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(round(lat, 2), round(lon, 2)) for lat, lon in points]


def consignment() -> dict[str, Any]:
    return {
        "parcel_count": 4,
        "weight_kg": 30.0,
        "volume_m3": 1.0,
        "depot": {"lat": 52.401234, "lon": 13.101234},
        "stops": [
            {"stop_id": f"s{i}", "location": {"lat": lat, "lon": lon}, "parcels": 2}
            for i, (lat, lon) in enumerate(PRECISE)
        ],
    }


def base_settings(tmp_path: Path, **values: Any) -> Settings:
    values = {"personal_data_retention_days": 30, **values}
    return Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never contacted: no broker is started
        data_dir=tmp_path,
        **values,
    )


async def mark_sent(service: Any, at: datetime) -> int:
    async with service.sessions() as session, session.begin():
        result = await session.execute(update(service.outbox).values(sent_at=at))
        return result.rowcount


async def outbox_count(service: Any) -> int:
    async with service.sessions() as session:
        return len((await session.execute(select(service.outbox.c.id))).all())


# ------------------------------------------------------------------------ booking ----


@pytest.fixture
async def booking(database_url: str, tmp_path: Path) -> AsyncIterator[BookingService]:
    settings = base_settings(
        tmp_path, hubs_file=write_catalogue(tmp_path / "hubs.yaml", hub_config(docks_per_slot=2))
    )
    service = BookingService(settings, settings.bootstrap_list(), database_url=database_url)
    await service.migrate()
    await service.load_hubs(settings.hubs_file)
    yield service
    await service.engine.dispose()


async def send(service: BookingService, payload: Payload, at: datetime = NOW) -> None:
    await service.handle(new_event(payload, source="carrier/acme", subject=TEST_HUB, time=at))


def request(reference: str) -> BookingRequested:
    return BookingRequested(
        carrier_id="acme",
        carrier_reference=reference,
        hub_id=TEST_HUB,
        slot_start=SLOT,
        consignment=consignment(),  # type: ignore[arg-type]
    )


async def booking_rows(service: BookingService) -> dict[str, booking_store.StoredBooking]:
    async with service.sessions() as session:
        return {b.carrier_reference: b for b in await booking_store.list_bookings(session)}


async def answers(service: BookingService) -> list[Any]:
    async with service.sessions() as session:
        return list((await session.execute(select(booking_store.inbox.c.answer))).scalars())


async def test_booking_keeps_its_decisions_and_loses_the_addresses_after_the_retention(
    booking: BookingService,
) -> None:
    await send(booking, request("kept"))
    await send(booking, request("cancelled"))
    cancel = BookingCancellationRequested(
        carrier_id="acme", carrier_reference="cancelled", hub_id=TEST_HUB, reason=SECRET
    )
    await send(booking, cancel, at=NOW + timedelta(minutes=1))
    before = await booking_rows(booking)
    assert stops_of(before["kept"].outcome["data"]["consignment"]) == PRECISE
    assert before["cancelled"].cancellation["data"]["reason"] == SECRET
    assert all(a is not None for a in await answers(booking))
    sent = await mark_sent(booking, NOW + timedelta(seconds=1))
    assert sent == 3
    async with booking.sessions() as session, session.begin():  # (the wall clock's, else)
        await session.execute(update(booking_store.inbox).values(processed_at=NOW))
    async with booking.sessions() as session:
        usage = await booking_store.usage_of(session, TEST_HUB, SLOT)

    # the slot ended 29 days ago: the booking stays as it is; the outbox rows sent and
    # the answers kept (copies) more than 30 days ago are forgotten
    within = SLOT + timedelta(days=29, hours=4)
    dry = await booking.purge_personal_data(within, dry_run=True)
    assert await outbox_count(booking) == 3 and None not in await answers(booking)
    counts = await booking.purge_personal_data(within)
    assert counts == dry
    assert counts == {
        "bookings (request, outcome, cancellation)": 0,
        "series (consignment, cancellation)": 0,
        "outbox (sent rows deleted)": 3,
        "inbox.answer": 3,
    }
    assert await booking_rows(booking) == before
    assert await outbox_count(booking) == 0 and await answers(booking) == [None, None, None]

    later = SLOT + timedelta(days=31)
    assert (await booking.purge_personal_data(later, dry_run=True)) == {
        "bookings (request, outcome, cancellation)": 2,
        "series (consignment, cancellation)": 0,
        "outbox (sent rows deleted)": 0,
        "inbox.answer": 0,
    }
    assert await booking_rows(booking) == before
    assert (await booking.purge_personal_data(later))[
        "bookings (request, outcome, cancellation)"
    ] == 2

    after = await booking_rows(booking)
    for reference in ("kept", "cancelled"):
        row, old = after[reference], before[reference]
        assert stops_of(row.request["consignment"]) == rounded(PRECISE)
        assert stops_of(row.outcome["data"]["consignment"]) == rounded(PRECISE)
        # the carrier's depot and the hub are businesses: they stay as they were
        assert row.request["consignment"]["depot"] == old.request["consignment"]["depot"]
        assert row.outcome["data"]["hub"] == old.outcome["data"]["hub"]
        # what aggregates and the carrier's queries need stays
        assert (row.status, row.volume_l, row.slot_start, row.request_fingerprint) == (
            old.status,
            old.volume_l,
            old.slot_start,
            old.request_fingerprint,
        )
        assert row.purged_at == later
        # still a valid event: a resend is answered with it
        REGISTRY[row.outcome["type"]].model_validate(row.outcome["data"])
    assert after["cancelled"].cancellation["data"]["reason"] is None
    assert SECRET not in json.dumps(after["cancelled"].cancellation)
    async with booking.sessions() as session:
        assert await booking_store.usage_of(session, TEST_HUB, SLOT) == usage

    # each row is done once
    assert sum((await booking.purge_personal_data(later)).values()) == 0
    await send(booking, request("kept"), at=later)  # (refused: its slot is past) unsent
    assert await outbox_count(booking) == 1
    # an unsent outbox row stays whatever its age: the relay still needs it
    await booking.purge_personal_data(later + timedelta(days=365))
    assert await outbox_count(booking) == 1


# ----------------------------------------------------------------------- dispatch ----

T0 = datetime(2026, 10, 5, 9, tzinfo=UTC)
DSLOT = T0 + timedelta(hours=1)


@pytest.fixture
async def dispatch(database_url: str, tmp_path: Path) -> AsyncIterator[DispatchService]:
    settings = base_settings(
        tmp_path,
        fleet_file=write_fleet(tmp_path / "fleet.yaml", bike("bike-1")),
        dispatch_wave_min_stops=1,
        dispatch_solver_time_limit_seconds=0,
        dispatch_solver_in_subprocess=False,
    )
    service = DispatchService(settings, settings.bootstrap_list(), database_url=database_url)
    await service.migrate()
    await service.load_fleet()
    yield service
    await service.engine.dispose()


async def apply(service: Any, payload: Payload, at: datetime) -> None:
    await service.handle(new_event(payload, source="test", subject=TEST_HUB, time=at))


async def test_dispatch_rounds_stops_done_and_completed_routes_and_leaves_open_stops(
    dispatch: DispatchService,
) -> None:
    from contracts.booking import Consignment

    await apply(dispatch, confirmed("b1", DSLOT, Consignment.model_validate(consignment())), T0)
    await apply(dispatch, checked_in("b1", DSLOT, DSLOT), DSLOT)
    route_id = f"{TEST_HUB}:w00001:bike-1"
    on_route = dict(vehicle_id="bike-1", hub_id=TEST_HUB, route_id=route_id, booking_id="b1")
    handed_over = DSLOT + timedelta(minutes=20)
    proof = ProofOfDelivery(
        at=handed_over,
        location=GeoPoint(lat=PRECISE[0][0], lon=PRECISE[0][1]),
        recipient_name="Erika Mustermann",
        signature_ref="sig/123",
        photo_ref="photo/123",
    )
    await apply(dispatch, StopDeliveredV2(stop_id="s0", proof=proof, **on_route), handed_over)
    await apply(
        dispatch,
        StopFailed(stop_id="s1", reason=SECRET, **on_route),
        DSLOT + timedelta(minutes=30),
    )
    finished = RouteFinished(vehicle_id="bike-1", hub_id=TEST_HUB, route_id=route_id, actual_km=9)
    done_at = DSLOT + timedelta(hours=1)
    await apply(dispatch, finished, done_at)
    await mark_sent(dispatch, done_at)

    async def state() -> tuple[Any, Any, Any]:
        async with dispatch.sessions() as session:
            s0 = await dispatch_store.get_stop(session, "b1", "s0")
            s1 = await dispatch_store.get_stop(session, "b1", "s1")
            route = await dispatch_store.get_route(session, route_id)
        return s0, s1, route

    s0, s1, route = await state()
    assert s0.status is StopStatus.DELIVERED and s1.status is not StopStatus.DELIVERED
    assert s0.proof is not None and s0.proof["recipient_name"] == "Erika Mustermann"
    assert stops_of(route.planned) == PRECISE

    assert sum((await dispatch.purge_personal_data(done_at + timedelta(days=29))).values()) == 0
    later = done_at + timedelta(days=31)
    counts = await dispatch.purge_personal_data(later)
    assert counts["stops (lat, lon, reason, proof)"] == 1
    assert counts["routes (planned stops)"] == 1
    assert counts["outbox (sent rows deleted)"] > 0

    p0, p1, purged = await state()
    assert (p0.lat, p0.lon) == rounded(PRECISE)[0] and p0.purged_at == later
    assert p0.reason is None
    # the proof keeps when and roughly where, not who
    assert p0.proof is not None
    assert not {"recipient_name", "signature_ref", "photo_ref"} & set(p0.proof)
    assert (p0.proof["location"]["lat"], p0.proof["location"]["lon"]) == rounded(PRECISE)[0]
    # the failed stop waits for another attempt: dispatch still needs its address
    assert p1 == s1 and (p1.lat, p1.lon) == PRECISE[1]
    assert stops_of(purged.planned) == rounded(PRECISE)
    # the route's figures stay
    assert (purged.status, purged.actual_km, purged.completed_at) == (
        route.status,
        route.actual_km,
        route.completed_at,
    )
    assert purged.planned["planned_km"] == route.planned["planned_km"]
    assert purged.planned["hub_location"] == route.planned["hub_location"]
    assert await outbox_count(dispatch) == 0
    assert sum((await dispatch.purge_personal_data(later)).values()) == 0


# ------------------------------------------------------------------------ gateway ----


async def test_the_gateway_forgets_webhook_events_after_the_retention(
    database_url: str, tmp_path: Path
) -> None:
    settings = base_settings(tmp_path)
    gateway = GatewayService(settings, [], database_url=database_url, consuming=False)
    await gateway.migrate()
    now = datetime(2027, 3, 1, tzinfo=UTC)
    try:
        async with gateway.sessions() as session, session.begin():
            await session.execute(
                gateway_store.webhook_deliveries.insert(),
                [
                    {
                        "subscription_id": "sub-1",
                        "carrier_id": "acme",
                        "event_id": f"e{days}",
                        "event_type": "microhub.booking.confirmed.v1",
                        "payload": b'{"stops": "..."}',
                        "status": "delivered",
                        "attempts": 1,
                        "next_attempt_at": now - timedelta(days=days),
                        "created_at": now - timedelta(days=days),
                    }
                    for days in (31, 29)
                ],
            )
            # which carrier command each forwarded one was: needed until booking answers
            await session.execute(
                gateway_store.forwarded_commands.insert(),
                [
                    {
                        "id": f"ingress-{days}",
                        "carrier_id": "acme",
                        "command_id": f"c{days}",
                        "command_source": "acme/tms",
                        "forwarded_at": now - timedelta(days=days),
                    }
                    for days in (31, 29)
                ],
            )
        assert await gateway.purge_personal_data(now) == {
            "webhook_deliveries.payload": 1,
            "forwarded_commands": 1,
            "outbox (sent rows deleted)": 0,
        }
        async with gateway.sessions() as session:
            kept = (await session.execute(select(gateway_store.forwarded_commands.c.id))).all()
        assert [r.id for r in kept] == ["ingress-29"]
        async with gateway.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        gateway_store.webhook_deliveries.c.event_id,
                        gateway_store.webhook_deliveries.c.payload,
                        gateway_store.webhook_deliveries.c.status,
                    ).order_by(gateway_store.webhook_deliveries.c.event_id)
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("e29", b'{"stops": "..."}', "delivered"),
            ("e31", None, "delivered"),
        ]
    finally:
        await gateway.engine.dispose()


async def test_the_purge_runs_on_the_services_timer(tmp_path: Path) -> None:
    settings = base_settings(
        tmp_path, personal_data_retention_days=1, retention_interval_seconds=0.05
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'booking.db'}"
    service = BookingService(settings, settings.bootstrap_list(), database_url=url)
    await service.migrate()
    old = datetime.now(UTC) - timedelta(days=2)
    async with service.sessions() as session, session.begin():
        await session.execute(
            booking_store.outbox.insert(),
            [
                {
                    "topic": "t",
                    "key": "k",
                    "event_id": "e1",
                    "event_type": "x",
                    "payload": b"{}",
                    "created_at": old,
                    "sent_at": old,
                    "attempts": 1,
                }
            ],
        )
    service.schedule_purge()
    try:
        assert [t.get_name() for t in service._tasks] == ["booking-personal-data-purge"]

        async def purged() -> bool:
            return await outbox_count(service) == 0

        await eventually(purged, timeout=5, what="the timer's purge of the sent outbox row")
    finally:
        for task in service._tasks:
            task.cancel()
        await asyncio.gather(*service._tasks, return_exceptions=True)
        await service.engine.dispose()
    off = base_settings(tmp_path, retention_interval_seconds=0)
    idle = BookingService(off, off.bootstrap_list(), database_url=url)
    idle.schedule_purge()
    assert idle._tasks == []
    await idle.engine.dispose()
