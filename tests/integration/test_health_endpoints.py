"""`/healthz` (liveness) and `/readyz` (readiness: Kafka and the database reachable,
every consumer assigned) on a running platform, and what a broken database does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from services.runtime.platform import Platform
from services.runtime.settings import Settings
from tests.support.hubs import write_catalogue


async def wait_ready(client: httpx.AsyncClient, timeout: float = 30.0) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200 or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_ready_once_assigned_and_not_ready_without_its_database(
    settings: Settings, topics: list[str], tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"hubs_file": write_catalogue(tmp_path / "hubs.yaml"), "http_port": 0}
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
