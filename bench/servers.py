"""The servers a benchmark runs against, found or started like the test suite's fixture
chains: Kafka from MICROHUB_BENCH_KAFKA_BOOTSTRAP_SERVERS, else Apache Kafka from its
Maven Central jars; PostgreSQL from MICROHUB_BENCH_DATABASE_URL, else the local server on
127.0.0.1:5432, else a throwaway cluster (initdb/pg_ctl)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from services.runtime.apache_kafka import ApacheKafka
from tests.support.postgres import LOCAL, _answers, throwaway_cluster


@dataclass
class Kafka:
    bootstrap: list[str]
    description: str


@contextlib.contextmanager
def kafka(say=print) -> Iterator[Kafka]:
    configured = os.environ.get("MICROHUB_BENCH_KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield Kafka([s.strip() for s in configured.split(",") if s.strip()], "configured")
        return
    with ApacheKafka(nodes=1, say=say) as apache:
        yield Kafka(apache.bootstrap_servers, apache.describe())


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A URL of a database the bench may CREATE DATABASE from."""
    configured = os.environ.get("MICROHUB_BENCH_DATABASE_URL")
    if configured:
        yield configured
    elif _answers(LOCAL):
        yield LOCAL
    else:
        with throwaway_cluster() as url:
            yield url


async def execute(url: str, sql: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a
    transaction)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(admin: str) -> AsyncIterator[str]:
    """A new, empty database on ``admin``'s server for one measurement, dropped after."""
    server = make_url(admin).set(drivername="postgresql")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    await execute(server.render_as_string(False), f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(False)
    finally:
        await execute(server.render_as_string(False), f'DROP DATABASE "{name}" WITH (FORCE)')
