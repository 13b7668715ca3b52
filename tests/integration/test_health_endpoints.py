"""`/healthz` (liveness) and `/readyz` (readiness: Kafka and the database reachable,
every consumer assigned) on a running platform, and what a broken database does; a
consuming service without the API serves them alone on its health port, and a taken
port stops a process with a clear message before it consumes."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.app.platform import Platform, PortUnavailable
from services.runtime.settings import Settings
from tests.support.hubs import write_catalogue
from tests.support.processes import MICROHUB, clean_env
from tests.support.waiting import eventually


async def wait_ready(client: httpx.AsyncClient, timeout: float = 30.0) -> httpx.Response:
    """/readyz until it says ready (or its last answer, for the assertion to show)."""
    answers: list[httpx.Response] = []

    async def ready() -> bool:
        answers.append(await client.get("/readyz"))
        return answers[-1].status_code == 200

    try:
        await eventually(ready, what="/readyz to answer 200", timeout=timeout, interval=0.2)
    except AssertionError:
        pass
    return answers[-1]


async def test_ready_once_assigned_and_not_ready_without_its_database(
    settings: Settings, topics: list[str], tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "hubs_file": write_catalogue(tmp_path / "hubs.yaml"),
            "http_port": 0,
            "demo_mode": True,  # the API's keys: the public demo's
        }
    )
    platform = await Platform(settings, services=["booking"]).start()
    try:
        async with httpx.AsyncClient(base_url=platform.base_url) as client:
            assert (await client.get("/healthz")).status_code == 200

            ready = await wait_ready(client)
            assert ready.status_code == 200, ready.text
            booking = ready.json()["services"]["booking"]
            assert booking["database"] and booking["kafka"]
            assert booking["assigned_partitions"]["booking"] == 6

            # the database goes away: not ready (traffic stops), still alive (no restart)
            service = platform.services["booking"]
            await service.engine.dispose()
            (tmp_path / "not-a-dir").write_text("")
            service.engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/not-a-dir/b.db")
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["services"]["booking"]["database"] is False
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await platform.stop()


async def test_a_consuming_service_without_the_api_serves_only_its_health_port(
    settings: Settings, topics: list[str], tmp_path: Path
) -> None:
    """`serve booking` next to `serve api` on one host: the service answers /healthz and
    /readyz on its health port and binds nothing else (no public API routes)."""
    settings = settings.model_copy(update={"hubs_file": write_catalogue(tmp_path / "hubs.yaml")})
    platform = await Platform(settings, services=["booking"], http=False, health_port=0).start()
    try:
        assert platform.base_url is None and platform.health_url is not None
        async with httpx.AsyncClient(base_url=platform.health_url) as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await wait_ready(client)
            assert ready.status_code == 200, ready.text
            booking = ready.json()["services"]["booking"]
            # which partitions: with replicas, the one owning a hub's key decides it
            assert booking["partitions"]["booking"] == [0, 1, 2, 3, 4, 5]
            for path in ("/v1/hubs", "/docs", "/openapi.json"):
                assert (await client.get(path)).status_code == 404, path
    finally:
        await platform.stop()


async def test_a_taken_port_stops_the_process_before_it_consumes(
    settings: Settings, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        platform = Platform(settings, services=["booking"], http=False, health_port=port)
        with pytest.raises(PortUnavailable, match=f"127.0.0.1:{port} for the health port"):
            await platform.start()
        assert platform.services == {}  # never joined a consumer group

        env = clean_env(
            kafka_bootstrap_servers="127.0.0.1:9",
            data_dir=str(tmp_path),
            http_port=str(port),
            demo_mode="true",  # keys, so that the port is what stops `serve api`
        )
        for args, message in (
            (["booking", "--health-port", str(port)], "MICROHUB_HEALTH_PORT or --health-port"),
            (["api"], "MICROHUB_HTTP_PORT"),
            (["api", "--health-port", "0"], "--health-port is for a single service"),
        ):
            done = await asyncio.to_thread(
                subprocess.run,
                [MICROHUB, "serve", *args],
                env=env | {"COLUMNS": "300"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert message in done.stderr, (args, done.stderr)
