"""The documented deployment (infra/compose.yaml, infra/k8s/) as processes on one host:
`serve api`, booking, two dispatch instances in one consumer group and reporting, each
a `microhub serve` subprocess on the session's Kafka and PostgreSQL, every consumer on
a health port of its own beside the API's port.

The six partitions of the booking events are split between the two dispatch instances,
each hub's records going to one of them. A hub operator's queue snapshot and live SSE
stream come from the API process, which consumes nothing: they deliver the changes of
hubs owned by either instance, and fleet changes made through the API show up too."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka.partitioner import murmur2

from contracts.topics import BOOKING_EVENTS
from services.dispatch.cli import ServerSentEvent, sse_events
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, monday_after
from tests.support.dispatch import bike
from tests.support.kafka import KafkaUnderTest
from tests.support.postgres import PostgresUnderTest
from tests.support.processes import MICROHUB, Proc, clean_env

# the sample hubs with a demo operator key (services/runtime/data/demo-api-keys.yaml)
HUBS = {"ber-westhafen": "Europe/Berlin", "osl-alnabru": "Europe/Oslo"}
ADMIN = {"Authorization": "Bearer demo-admin"}
CONSUMERS = ("dispatch-1", "dispatch-2", "booking", "reporting")
START_TIMEOUT = 180  # five interpreters importing OR-Tools and FastAPI on a shared machine


def operator(hub_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer demo-operator-{hub_id}"}


def partition_of(hub_id: str) -> int:
    """Kafka's default partitioner (murmur2 of the key), the booking service's too."""
    return (murmur2(hub_id.encode()) & 0x7FFFFFFF) % BOOKING_EVENTS.partitions


def slot_of(hub_id: str, monday: datetime) -> datetime:
    """09:00 local on ``monday``: open and on the slot grid at both hubs."""
    local = datetime.combine(monday.date(), time(9, 0), tzinfo=ZoneInfo(HUBS[hub_id]))
    return local.astimezone(UTC)


class QueueStream:
    """A hub operator's live queue (SSE) through the API, read as the test goes."""

    def __init__(self, client: httpx.AsyncClient, hub_id: str) -> None:
        self.client = client
        self.hub_id = hub_id
        self.changes: list[dict[str, Any]] = []
        self.snapshot: dict[str, Any] = {}

    async def __aenter__(self) -> QueueStream:
        self._stream = self.client.stream(
            "GET", f"/v1/hubs/{self.hub_id}/dispatch/stream", headers=operator(self.hub_id)
        )
        response = await self._stream.__aenter__()
        assert response.status_code == 200, (await response.aread()).decode()
        self._events: AsyncIterator[ServerSentEvent] = sse_events(response)
        first = await asyncio.wait_for(anext(self._events), 30)
        assert first.event == "snapshot", first
        self.snapshot = json.loads(first.data)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stream.__aexit__(*exc)

    async def until(
        self, wanted: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60
    ) -> dict[str, Any]:
        """Change events until one of its changes is ``wanted``; returns that change."""
        try:
            async with asyncio.timeout(timeout):
                async for event in self._events:
                    if event.event != "change":
                        continue
                    document = json.loads(event.data)
                    self.changes.extend(document["changes"])
                    self.snapshot = document["snapshot"]
                    for change in document["changes"]:
                        if wanted(change):
                            return change
        except TimeoutError:
            pass
        raise AssertionError(f"{self.hub_id}: no {what} in {timeout}s; changes: {self.changes}")


def kind(name: str, **detail: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda change: (
        change["kind"] == name and all(change.get(k) == v for k, v in detail.items())
    )


async def dispatch_split(
    client: httpx.AsyncClient, health: dict[str, str], timeout: float = 120
) -> dict[str, set[int]]:
    """Once every consumer is ready and the two dispatch instances hold disjoint halves
    of the booking events' partitions: instance -> its partitions."""
    everything = set(range(BOOKING_EVENTS.partitions))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        reports = {name: await client.get(f"{url}/readyz") for name, url in health.items()}
        split = {
            name: set(
                reports[name].json()["services"]["dispatch"]["partitions"]["dispatch-bookings"]
            )
            for name in ("dispatch-1", "dispatch-2")
        }
        ready = all(r.status_code == 200 for r in reports.values())
        if ready and all(split.values()) and set.union(*split.values()) == everything:
            assert not set.intersection(*split.values()), split
            return split
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"no split of {sorted(everything)} between the dispatch instances in "
                f"{timeout}s: {split}; readiness {[r.json() for r in reports.values()]}"
            )
        await asyncio.sleep(0.2)  # a rebalance is a state to poll: nothing signals it


async def test_operators_follow_every_hub_through_the_api_whichever_dispatch_owns_it(
    settings: Settings,
    topics: list[str],
    kafka_cluster: KafkaUnderTest,
    postgres_server: PostgresUnderTest,
    tmp_path: Path,
) -> None:
    assert kafka_cluster.is_real, (
        "two dispatch instances in one consumer group need a real Kafka (the librdkafka "
        "mock admits one member per group): run with Java and Maven, or a configured broker"
    )
    databases = {
        s: await postgres_server.create_database() for s in ("booking", "dispatch", "reporting")
    }
    env = clean_env(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka_topic_prefix=settings.kafka_topic_prefix,
        data_dir=str(tmp_path / "data"),
        http_port="0",
        health_port="0",  # free ports: this host is shared
        demo_mode="true",  # the operators' and admin's keys are the demo's
        # tests live in simulated time (next week's slots): event time alone decides
        max_clock_skew_seconds="0",
        sweep_interval_seconds="0",
        dispatch_wave_nudge_seconds="0",
        dispatch_solver_time_limit_seconds="0",
        kafka_fetch_max_wait_ms="100",
        **{f"database_urls__{s}": postgres_server.url_for(db) for s, db in databases.items()},
    ) | {"COLUMNS": "300"}
    procs: dict[str, Proc] = {}
    try:
        # as compose's `migrate` job: the schema first, then every process
        migrate = await asyncio.to_thread(
            subprocess.run,
            [MICROHUB, "migrate"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        for name in CONSUMERS:
            procs[name] = Proc([MICROHUB, "serve", name.split("-")[0]], env, tmp_path)
        procs["api"] = Proc([MICROHUB, "serve", "api"], env, tmp_path)
        health = {
            name: (await procs[name].wait_for_async(r"health at\s+(http://\S+)", START_TIMEOUT))[1]
            for name in CONSUMERS
        }
        api_url = (await procs["api"].wait_for_async(r"HTTP at\s+(http://\S+)", START_TIMEOUT))[1]

        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client:
            split = await dispatch_split(client, health)
            owner = {h: next(n for n, p in split.items() if partition_of(h) in p) for h in HUBS}
            assert set(owner.values()) == {"dispatch-1", "dispatch-2"}, (
                f"the operator hubs' partitions {[partition_of(h) for h in HUBS]} should "
                f"land on both instances: {split}"
            )
            # the consumers serve no API; the API process consumes nothing
            assert (await client.get(f"{health['dispatch-1']}/v1/hubs")).status_code == 404
            api_ready = await client.get(f"{api_url}/readyz")
            assert api_ready.status_code == 200, api_ready.text

            await drive_and_follow(client, api_url, settings)

            for name in ("dispatch-1", "dispatch-2"):
                report = (await client.get(f"{health[name]}/healthz")).json()
                processed = report["services"]["dispatch"]["consumers"]["dispatch-bookings"]
                assert processed["processed"] > 0, (name, report)  # each decided its hub

        for name, proc in procs.items():
            assert await asyncio.to_thread(proc.stop) == 0, f"{name}:\n{proc.output[-3000:]}"
    finally:
        for proc in procs.values():
            await asyncio.to_thread(proc.stop)
        for database in databases.values():
            await postgres_server.drop_database(database)


async def drive_and_follow(client: httpx.AsyncClient, api_url: str, settings: Settings) -> None:
    for hub_id in HUBS:
        snapshot = await client.get(
            f"{api_url}/v1/hubs/{hub_id}/dispatch", headers=operator(hub_id)
        )
        assert snapshot.status_code == 200, snapshot.text
        assert snapshot.json()["vehicles"] and snapshot.json()["stops"] == []
    other = await client.get(
        f"{api_url}/v1/hubs/osl-alnabru/dispatch", headers=operator("ber-westhafen")
    )
    assert other.status_code == 403 and "osl-alnabru" in other.json()["detail"]

    monday = monday_after(datetime.now(UTC))
    api = httpx.AsyncClient(base_url=api_url, timeout=httpx.Timeout(10, read=None))
    async with (
        api,
        Carrier(
            settings.bootstrap_list(), prefix=settings.kafka_topic_prefix, carrier_id="parcelco"
        ) as carrier,
        QueueStream(api, "ber-westhafen") as berlin,
        QueueStream(api, "osl-alnabru") as oslo,
    ):
        streams = {"ber-westhafen": berlin, "osl-alnabru": oslo}
        for hub_id in HUBS:
            slot = slot_of(hub_id, monday)
            await carrier.request(
                f"topo-{hub_id}", hub_id=hub_id, slot_start=slot, time=slot - timedelta(hours=3)
            )
        expected = {
            h: await s.until(kind("stops_expected"), "confirmed booking")
            for h, s in streams.items()
        }
        for hub_id in HUBS:
            await carrier.check_in(f"topo-{hub_id}", hub_id=hub_id, time=slot_of(hub_id, monday))
        for hub_id, stream in streams.items():
            booking_id = expected[hub_id]["booking_id"]
            await stream.until(kind("stops_waiting", booking_id=booking_id), "check-in")
            waiting = [s for s in stream.snapshot["stops"] if s["booking_id"] == booking_id]
            assert [s["status"] for s in waiting] == ["waiting", "waiting"], stream.snapshot
            assert stream.snapshot["hub_id"] == hub_id

        # fleet admin through the API: written to dispatch's database, seen in the stream
        for hub_id, stream in streams.items():
            vehicle = f"{hub_id[:3]}-topo-bike"
            url = f"/v1/hubs/{hub_id}/fleet/{vehicle}"
            put = await api.put(url, headers=ADMIN, json=bike(vehicle))
            assert put.status_code == 200, put.text
            await stream.until(kind("fleet", vehicle_id=vehicle, action="put"), "added vehicle")
            assert vehicle in [v["vehicle_id"] for v in stream.snapshot["vehicles"]]
            assert (await api.delete(url, headers=ADMIN)).status_code == 204
            await stream.until(kind("fleet", vehicle_id=vehicle, action="removed"), "removal")
            assert vehicle not in [v["vehicle_id"] for v in stream.snapshot["vehicles"]]
