"""The public API fails closed: without a keys file it does not start, the public demo keys
work only in demo mode (which says so), and a keys file holding one is refused outside it.

(Security headers and the pages' sign-in with a session cookie instead of keys in URLs
come from the pages' own branch of work; see services/runtime/http.py there.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from services.app.platform import Platform
from services.runtime.auth import DEMO_KEYS, KeyFileError, digest
from services.runtime.kafka import KafkaCluster
from services.runtime.settings import Settings
from tests.support.processes import MICROHUB, clean_env


def api_only(settings: Settings, **update: object) -> Platform:
    """`serve api` of the gateway's routes alone (enough for a key to be asked)."""
    settings = settings.model_copy(update={"http_port": 0, **update})
    cluster = KafkaCluster(settings, bootstrap=settings.bootstrap_list())
    return Platform(settings, services=["gateway"], consuming=False, cluster=cluster)


async def started(platform: Platform) -> Platform:
    await platform.start()
    await platform.services["gateway"].migrate()  # as `microhub migrate` would have
    return platform


async def test_without_a_keys_file_the_api_does_not_start(settings: Settings) -> None:
    platform = api_only(settings)
    with pytest.raises(KeyFileError, match="MICROHUB_API_KEYS_FILE is not set"):
        await platform.start()
    assert platform.services == {}  # it stopped before anything else

    # `microhub serve api`: exit 2 and the reason, before it even looks for Kafka
    process = await asyncio.create_subprocess_exec(
        MICROHUB,
        "serve",
        "api",
        env=clean_env(http_port="0") | {"COLUMNS": "300"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2, out.decode()
    assert "MICROHUB_API_KEYS_FILE is not set" in out.decode()


async def test_the_demo_keys_are_refused_outside_demo_mode(
    settings: Settings, tmp_path: Path
) -> None:
    # the shipped demo keys file, or a file of one's own with a demo key copied in
    copied = tmp_path / "keys.yaml"
    copied.write_text(
        "keys:\n"
        f"  - {{sha256: {digest('an-own-admin-key-0123')}, scope: admin, name: ops}}\n"
        "  - {key: demo-carrier-parcelco, scope: 'carrier:parcelco', name: copied}\n"
    )
    for path in (DEMO_KEYS, copied):
        with pytest.raises(KeyFileError, match="public demo keys"):
            await api_only(settings, api_keys_file=path).start()


async def test_demo_mode_serves_the_demo_keys_and_says_so(settings: Settings) -> None:
    platform = await started(api_only(settings, demo_mode=True))
    try:
        async with httpx.AsyncClient(base_url=platform.base_url) as client:
            health = (await client.get("/healthz")).json()
            assert health["demo_mode"] == "the API accepts the public demo keys"
            title = (await client.get("/openapi.json")).json()["info"]["title"]
            assert "DEMO MODE" in title
            admin = {"Authorization": "Bearer demo-admin"}
            assert (await client.get("/v1/admin/carriers", headers=admin)).status_code == 200
    finally:
        await platform.stop()


async def test_outside_demo_mode_only_the_files_keys_open_the_api(
    settings: Settings, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"keys:\n  - {{sha256: {digest('ops-key-0123456789')}, scope: admin}}\n")
    platform = await started(api_only(settings, api_keys_file=keys))
    try:
        async with httpx.AsyncClient(base_url=platform.base_url) as client:
            assert "demo_mode" not in (await client.get("/healthz")).json()
            for key, expected in (("demo-admin", 401), ("ops-key-0123456789", 200)):
                answer = await client.get(
                    "/v1/admin/carriers", headers={"Authorization": f"Bearer {key}"}
                )
                assert answer.status_code == expected, (key, answer.text)
    finally:
        await platform.stop()
