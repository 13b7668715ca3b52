"""PostgreSQL for tests, as a chain: MICROHUB_TEST_DATABASE_URL, else testcontainers,
else the local server at 127.0.0.1:5432, else a throwaway cluster (initdb/pg_ctl).

Every test gets a fresh database on that server, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from tests.support.docker import docker_engine_answers

ENV = "MICROHUB_TEST_DATABASE_URL"
LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class PostgresUnderTest:
    kind: str
    admin_url: str  # a database we may CREATE DATABASE from

    def url_for(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    async def create_database(self) -> str:
        name = f"microhub_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(_plain(self.admin_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(_plain(self.admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _answers(url: str) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(_plain(url), timeout=3)
        except Exception:
            return False
        await conn.close()
        return True

    # in a thread: this may be called while pytest-asyncio's loop is running
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, probe()).result()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(
        f"no PostgreSQL found: set {ENV}, run a Docker engine, start a server on "
        f"127.0.0.1:5432, or install PostgreSQL so that {name} is available"
    )


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """initdb + pg_ctl in a temporary folder; PostgreSQL refuses to run as root, so as
    root it runs as the 'postgres' user."""
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError(
                "running as root and there is no 'postgres' user for initdb"
            ) from exc
        run_as = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="microhub-pg-"))
    data = folder / "data"
    if run_as:
        shutil.chown(folder, "postgres")
    port = _free_port()
    subprocess.run(
        [
            *run_as,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def chosen_kind() -> str:
    """Which link of the chain this session uses (decided without starting anything)."""
    if os.environ.get(ENV):
        return "configured"
    if docker_engine_answers():
        return "testcontainers"
    if not os.environ.get("MICROHUB_TEST_NO_LOCAL_POSTGRES") and _answers(LOCAL):
        return "local"
    return "throwaway"


def describe_choice(kind: str) -> str:
    """For the session header: which server, and its version where it can be told now."""
    if kind in ("configured", "local"):
        url = os.environ[ENV] if kind == "configured" else LOCAL
        return f"postgresql {_server_version(url)} ({kind}: {make_url(url).render_as_string()})"
    if kind == "testcontainers":
        return "postgresql 16 in a container (testcontainers)"
    try:
        done = subprocess.run([_pg_bin("postgres"), "--version"], capture_output=True, text=True)
        # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        found = re.search(r"\b\d+(?:\.\d+)+", done.stdout)
        version = found.group(0) if found else done.stdout.strip()
    except (RuntimeError, OSError) as exc:
        return f"throwaway cluster, but {exc}"
    return f"postgresql {version} (throwaway cluster: initdb/pg_ctl)"


def _server_version(url: str) -> str:
    async def probe() -> str:
        conn = await asyncpg.connect(_plain(url), timeout=3)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(asyncio.run, probe()).result()
        except Exception as exc:
            return f"(version unknown: {exc})"


def postgres_chain() -> Iterator[PostgresUnderTest]:
    kind = chosen_kind()
    if kind == "configured":
        yield PostgresUnderTest(kind, os.environ[ENV])
    elif kind == "testcontainers":
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield PostgresUnderTest(kind, container.get_connection_url())
    elif kind == "local":
        yield PostgresUnderTest(kind, LOCAL)
    else:
        with throwaway_cluster() as url:
            yield PostgresUnderTest(kind, url)
