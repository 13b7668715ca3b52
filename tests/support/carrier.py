"""A carrier's system as a test double: plain aiokafka and raw JSON, deliberately not the
project's own producer or models, so the wire contract is what gets tested."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.support.waiting import eventually

COMMANDS = "microhub.booking.commands.v1"
EVENTS = "microhub.booking.events.v1"


def own_topic(carrier_id: str, kind: str = "commands") -> str:
    """A carrier's own topic (``commands`` or ``events``), without the prefix."""
    return f"microhub.carriers.{carrier_id}.{kind}.v1"


def consignment(
    *, parcels: int = 4, weight_kg: float = 30.0, volume_m3: float = 2.0, stops: int = 2
) -> dict[str, Any]:
    per_stop = [parcels // stops + (1 if i < parcels % stops else 0) for i in range(stops)]
    return {
        "parcel_count": parcels,
        "weight_kg": weight_kg,
        "volume_m3": volume_m3,
        "depot": {"lat": 52.40, "lon": 13.10},
        "stops": [
            {
                "stop_id": f"s{i}",
                "location": {"lat": 52.50 + i / 200, "lon": 13.40 + i / 300},
                "parcels": n,
            }
            for i, n in enumerate(per_stop)
        ],
    }


def envelope(
    event_type: str, data: dict[str, Any], *, time: datetime, subject: str
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "carrier/test",
        "type": event_type,
        "time": time.isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }


class Carrier:
    def __init__(
        self,
        bootstrap: list[str],
        *,
        prefix: str = "",
        carrier_id: str = "acme",
        security: Mapping[str, Any] | None = None,
        topic: str = COMMANDS,
    ) -> None:
        """``security``: aiokafka's security keywords (``aiokafka_security_kwargs``), to
        send as a SASL principal; ``topic``: where its commands go (default: the internal
        commands topic, as a platform principal would write it; ``own_topic(id)``: the
        carrier's own, through the gateway)."""
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.carrier_id = carrier_id
        self.topic = topic
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", **(security or {})
        )

    async def __aenter__(self) -> Carrier:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send_raw(
        self, value: bytes, *, key: str, record_time: datetime | None = None, wait: bool = True
    ):
        """``record_time``: the Kafka record timestamp (default: the producer's clock, as
        a real carrier's; tests in simulated time run the service with the skew check off)."""
        ts = int(record_time.timestamp() * 1000) if record_time is not None else None
        future = await self.producer.send(
            self.prefix + self.topic, value, key=key.encode(), timestamp_ms=ts
        )
        return await future if wait else future

    async def send(
        self, event_type: str, data: dict[str, Any], *, time: datetime, wait: bool = True
    ) -> dict:
        doc = envelope(event_type, data, time=time, subject=data["hub_id"])
        await self.send_raw(json.dumps(doc).encode(), key=data["hub_id"], wait=wait)
        return doc

    def request_data(
        self, reference: str, *, hub_id: str, slot_start: datetime, **consignment_kw: Any
    ) -> dict:
        return {
            "carrier_id": self.carrier_id,
            "carrier_reference": reference,
            "hub_id": hub_id,
            "slot_start": slot_start.isoformat(),
            "consignment": consignment(**consignment_kw),
        }

    async def request(
        self,
        reference: str,
        *,
        hub_id: str,
        slot_start: datetime,
        time: datetime,
        wait: bool = True,
        **consignment_kw: Any,
    ) -> dict:
        return await self.send(
            "microhub.booking.requested.v1",
            self.request_data(reference, hub_id=hub_id, slot_start=slot_start, **consignment_kw),
            time=time,
            wait=wait,
        )

    async def burst(
        self,
        count: int,
        *,
        hub_id: str,
        first_slot: datetime,
        time: datetime,
        slots: int = 10,
        volume_m3: float = 0.2,
        prefix: str = "b",
        before_each=None,
    ) -> None:
        """``count`` requests spread round-robin over ``slots`` hourly slots, without
        waiting for each ack (``before_each(i)`` runs before request i), then flushed."""
        for i in range(count):
            if before_each is not None:
                before_each(i)
            await self.request(
                f"{prefix}{i}",
                hub_id=hub_id,
                slot_start=first_slot + timedelta(hours=i % slots),
                time=time,
                volume_m3=volume_m3,
                wait=False,
            )
        await self.producer.flush()

    async def spread(
        self,
        first: int,
        count: int,
        *,
        hub_ids: list[str],
        first_slot: datetime,
        time: datetime,
        slots: int = 10,
    ) -> None:
        """Requests ``c<first>`` … over several hubs (round-robin) and, per hub, ``slots``
        hourly slots, without waiting for each ack; then flushed."""
        for i in range(first, first + count):
            await self.request(
                f"c{i}",
                hub_id=hub_ids[i % len(hub_ids)],
                slot_start=first_slot + timedelta(hours=(i // len(hub_ids)) % slots),
                time=time,
                volume_m3=0.2,
                wait=False,
            )
        await self.producer.flush()

    async def cancel(self, reference: str, *, hub_id: str, time: datetime) -> dict:
        data = {"carrier_id": self.carrier_id, "carrier_reference": reference, "hub_id": hub_id}
        return await self.send("microhub.booking.cancellation_requested.v1", data, time=time)

    async def reschedule(
        self,
        reference: str,
        *,
        hub_id: str,
        slot_start: datetime,
        time: datetime,
        reason: str | None = None,
    ) -> dict:
        data = {
            "carrier_id": self.carrier_id,
            "carrier_reference": reference,
            "hub_id": hub_id,
            "slot_start": slot_start.isoformat(),
        }
        if reason is not None:
            data["reason"] = reason
        return await self.send("microhub.booking.reschedule_requested.v1", data, time=time)

    async def check_in(self, reference: str, *, hub_id: str, time: datetime) -> dict:
        data = {"carrier_id": self.carrier_id, "carrier_reference": reference, "hub_id": hub_id}
        return await self.send("microhub.booking.check_in.v1", data, time=time)


class TopicReader:
    """Reads a topic from the beginning in the background and keeps what it saw."""

    def __init__(
        self, bootstrap: list[str], topic: str, *, security: Mapping[str, Any] | None = None
    ) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **(security or {}),
        )
        self.records: list[Any] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.records.extend(records)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in self.records]

    async def at_end(self) -> bool:
        """Has the reader read everything the topic holds now (its end offsets)?"""
        assigned = self.consumer.assignment()
        if not assigned:
            return False
        ends = await self.consumer.end_offsets(list(assigned))
        positions = {tp: await self.consumer.position(tp) for tp in ends}
        return all(positions[tp] >= end for tp, end in ends.items())

    def of_type(self, suffix: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"].endswith(suffix)]

    def by_reference(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.events:
            grouped[event["data"].get("carrier_reference", "?")].append(event)
        return grouped

    async def wait_for(self, predicate, *, timeout: float = 20.0, what: str = "events") -> None:
        def seen() -> list[tuple[str, str | None]]:
            return [(e["type"], e["data"].get("carrier_reference")) for e in self.events][-20:]

        await eventually(
            lambda: predicate(self), what=what, timeout=timeout, interval=0.05, describe=seen
        )

    async def wait_count(
        self, n: int, *, suffix: str = "", timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        await self.wait_for(
            lambda r: len(r.of_type(suffix)) >= n,
            timeout=timeout,
            what=f"{n} events of type *{suffix}",
        )
        return self.of_type(suffix)


def monday_after(moment: datetime, *, weeks: int = 0) -> datetime:
    """Midnight UTC of the Monday after ``moment`` (a weekday every sample hub opens)."""
    days = (7 - moment.weekday()) % 7 or 7
    return (moment + timedelta(days=days + 7 * weeks)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
