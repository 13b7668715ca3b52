from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.booking.service import BookingService
from services.gateway.service import GatewayService
from services.runtime.acls import load_acls
from services.runtime.apache_kafka import ApacheKafka
from services.runtime.db import make_engine, make_sessionmaker
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader
from tests.support.gateway import write_carriers
from tests.support.hubs import write_catalogue
from tests.support.kafka import KafkaUnderTest, create_topics, real_kafka_or_skip
from tests.support.secured_kafka import INTRUDER, INTRUDER_PASSWORD, SecuredKafka

# the carriers of the tests' registry (the HTTP tests' API keys are theirs)
TEST_CARRIERS = ("acme", "other", "bravo")


@pytest.fixture
async def booking_sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated booking database, on each of the two databases."""
    engine = make_engine(database_url)
    await BookingService.spec.migrate(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def booking_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "hubs_file": write_catalogue(tmp_path / "hubs.yaml"),
            "carriers_file": write_carriers(tmp_path / "carriers.yaml", *TEST_CARRIERS),
        }
    )


@pytest.fixture
async def booking(
    booking_settings: Settings, topics: list[str], database_url: str
) -> AsyncIterator[BookingService]:
    service = BookingService(
        booking_settings, booking_settings.bootstrap_list(), database_url=database_url
    )
    await service.start()
    try:
        yield service
    finally:
        if service.started:
            await service.stop()


@pytest.fixture
async def gateway(
    booking_settings: Settings, kafka_cluster: KafkaUnderTest, tmp_path: Path
) -> AsyncIterator[GatewayService]:
    """The gateway, which the HTTP API's commands go through (the carriers' topics, the
    ingress's rules) as every carrier's do; on its own database."""
    await create_topics(booking_settings, kafka_cluster)  # the test registry's carriers'
    service = GatewayService(
        booking_settings,
        booking_settings.bootstrap_list(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
    )
    await service.start()
    try:
        yield service
    finally:
        if service.started:
            await service.stop()


@pytest.fixture
async def carrier(booking_settings: Settings) -> AsyncIterator[Carrier]:
    async with Carrier(
        booking_settings.bootstrap_list(), prefix=booking_settings.kafka_topic_prefix
    ) as c:
        yield c


@pytest.fixture
async def outcomes(booking_settings: Settings, topics: list[str]) -> AsyncIterator[TopicReader]:
    topic = booking_settings.topic("microhub.booking.events.v1")
    async with TopicReader(booking_settings.bootstrap_list(), topic) as reader:
        yield reader


@pytest.fixture(scope="session")
def secured_kafka() -> Iterator[SecuredKafka]:
    """Apache Kafka with SASL/SCRAM and ACLs (its own node, whatever the session's Kafka
    is): only the admin and a user without ACLs exist until a test applies the file."""
    real_kafka_or_skip()
    with ApacheKafka(nodes=1, users={INTRUDER: INTRUDER_PASSWORD}) as apache:
        yield SecuredKafka(apache, load_acls())


async def _booking_engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url)
    await BookingService.spec.migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def booking_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database with the booking service's schema (its migrations)."""
    async for engine in _booking_engine(database_url):
        yield engine


@pytest.fixture
async def booking_engine_pg(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """The same on PostgreSQL only, for what SQLite has no counterpart of (plans,
    concurrent writers)."""
    async for engine in _booking_engine(postgres_url):
        yield engine
