from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.booking.service import BookingService
from services.runtime.acls import load_acls
from services.runtime.apache_kafka import ApacheKafka
from services.runtime.db import make_engine
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader
from tests.support.hubs import write_catalogue
from tests.support.kafka import real_kafka_or_skip
from tests.support.secured_kafka import INTRUDER, INTRUDER_PASSWORD, SecuredKafka


@pytest.fixture
def booking_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"hubs_file": write_catalogue(tmp_path / "hubs.yaml")})


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


@pytest.fixture
async def booking_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database with the booking service's schema (its migrations)."""
    engine = make_engine(database_url)
    await BookingService.spec.migrate(engine)
    yield engine
    await engine.dispose()
