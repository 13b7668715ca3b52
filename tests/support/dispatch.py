"""Test doubles around the dispatch service: a fleet file, and the booking service and the
vehicles as publishers of contract events over plain aiokafka."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer

from contracts.booking import BookingConfirmed, Consignment, ConsignmentCheckedIn, HubSummary
from contracts.common import GeoPoint
from contracts.envelope import CloudEvent, Payload, encode, new_event
from tests.support.hubs import TEST_HUB

HUB_LOCATION = {"lat": 52.52, "lon": 13.40}
ALL_DAY = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def bike(vehicle_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": vehicle_id,
        "type": "e_cargo_bike",
        "capacity": {"parcels": 40, "kg": 150, "m3": 1.5},
        "range_km": 60,
        "speed_kmh": 15,
        "energy_kwh_per_km": 0.015,
        "shifts": ALL_DAY,
        **overrides,
    }


def write_fleet(path: Path, *vehicles: dict[str, Any], hub_id: str = TEST_HUB) -> Path:
    document = {
        "circuity": {"testcity": 1.3},
        "hubs": [
            {
                "hub_id": hub_id,
                "service_minutes_per_stop": 4,
                "vehicles": list(vehicles) or [bike("bike-1"), bike("bike-2")],
            }
        ],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def hub_summary(hub_id: str = TEST_HUB) -> HubSummary:
    return HubSummary(
        hub_id=hub_id,
        name="Test hub",
        city_id="testcity",
        city_name="Test City",
        country="DE",
        timezone="Europe/Berlin",
        location=GeoPoint(**HUB_LOCATION),
    )


def consignment(stops: int, *, kg_per_stop: float = 8.0) -> Consignment:
    return Consignment.model_validate(
        {
            "parcel_count": 2 * stops,
            "weight_kg": kg_per_stop * stops,
            "volume_m3": 0.1 * stops,
            "depot": {"lat": 52.40, "lon": 13.10},
            "stops": [
                {
                    "stop_id": f"s{i}",
                    "parcels": 2,
                    "location": {"lat": 52.50 + (i % 4) / 250, "lon": 13.38 + (i // 4) / 150},
                }
                for i in range(stops)
            ],
        }
    )


def confirmed(
    booking_id: str, slot: datetime, cons: Consignment, hub_id: str = TEST_HUB
) -> BookingConfirmed:
    return BookingConfirmed(
        booking_id=booking_id,
        carrier_id="acme",
        carrier_reference=f"ref-{booking_id}",
        hub_id=hub_id,
        slot_start=slot,
        slot_end=slot,
        hub=hub_summary(hub_id),
        consignment=cons,
    )


def checked_in(
    booking_id: str, slot: datetime, at: datetime, hub_id: str = TEST_HUB
) -> ConsignmentCheckedIn:
    return ConsignmentCheckedIn(
        booking_id=booking_id,
        carrier_id="acme",
        carrier_reference=f"ref-{booking_id}",
        hub_id=hub_id,
        slot_start=slot,
        checked_in_at=at,
    )


class Publisher:
    """Publishes contract events as their producers would: the booking service keyed by
    hub id, vehicles keyed by vehicle id."""

    def __init__(
        self, bootstrap: list[str], topic_of, *, security: Mapping[str, Any] | None = None
    ) -> None:
        """``security``: aiokafka's security keywords, to publish as a SASL principal."""
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", **(security or {})
        )
        self.topic_of = topic_of

    async def __aenter__(self) -> Publisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(
        self, payload: Payload, *, time: datetime, source: str | None = None
    ) -> CloudEvent[Any]:
        key = getattr(payload, "vehicle_id", None) or payload.hub_id
        event = new_event(
            payload, source=source or "microhub/test", subject=payload.hub_id, time=time
        )
        await self.resend(event, key=key)
        return event

    async def resend(self, event: CloudEvent[Any], *, key: str) -> None:
        await self.send_raw(encode(event), topic=event.data.topic, key=key)

    async def send_raw(self, value: bytes, *, topic: str, key: str) -> None:
        # the record timestamp is the producer's clock: event time lives in the envelope
        await self.producer.send_and_wait(self.topic_of(topic), value, key=key.encode())


def payloads(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in events]


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
