"""A command whose CloudEvents identity holds a NUL character (which PostgreSQL's text
cannot store) is refused at the door, on both databases alike: dead-lettered as
not_cloudevent, while the rest of its batch is decided and answered in one go. Before,
on PostgreSQL, it failed its batch's inbox claim, then its own three attempts, and was
dead-lettered as a handler failure; on SQLite it was stored and answered."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from contracts.hubs import HubConfig
from services.booking import store
from services.booking.handlers import BookingHandlers
from services.booking.service import BookingService
from services.runtime.db import make_engine, make_sessionmaker
from tests.support.booking import commands_consumer
from tests.support.carrier import consignment, envelope
from tests.support.hubs import hub_config

NOW = datetime(2027, 3, 1, 5, tzinfo=UTC)  # Monday 06:00 Berlin
SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)  # Tuesday 09:00 local
HUB = HubConfig.model_validate(hub_config(docks_per_slot=5, volume_per_slot_m3=20.0))


@dataclass
class KafkaRecord:
    value: bytes
    offset: int
    topic: str = "microhub.booking.commands.v1"
    partition: int = 0
    key: bytes | None = None
    timestamp: int = int(NOW.timestamp() * 1000)


class Recorded:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def send(self, record: Any, *, reason: str, error: BaseException | str) -> None:
        self.reasons.append(reason)


def _command(reference: str, event_id: str) -> bytes:
    body = {
        "carrier_id": "acme",
        "carrier_reference": reference,
        "hub_id": HUB.id,
        "slot_start": SLOT.isoformat(),
        "consignment": consignment(volume_m3=1.0),
    }
    document = envelope("microhub.booking.requested.v1", body, time=NOW, subject=HUB.id)
    document["id"] = event_id
    return json.dumps(document).encode()


async def test_a_nul_in_a_commands_id_is_refused_at_the_door_and_its_batch_decided(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        await BookingService.spec.migrate(engine)
        sessions = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            await store.upsert_hub(session, HUB)
        consumer = commands_consumer(sessions, BookingHandlers(no_show_grace=timedelta(0)))
        dead_letters = Recorded()
        consumer.dead_letters = dead_letters  # type: ignore[assignment]
        good = [str(uuid.uuid4()), str(uuid.uuid4())]
        records = [
            KafkaRecord(_command("r-1", good[0]), offset=0),
            KafkaRecord(_command("r-2", "counter\u0000-7"), offset=1),
            KafkaRecord(_command("r-3", good[1]), offset=2),
        ]
        await consumer.process_batch(records)

        assert dead_letters.reasons == ["not_cloudevent"]
        async with sessions() as session:
            claimed = (await session.execute(select(store.inbox.c.event_id))).scalars().all()
            answers = (await session.execute(select(store.outbox.c.payload))).scalars().all()
        assert sorted(claimed) == sorted(good)
        answered = sorted(json.loads(a)["causationid"] for a in answers)
        assert answered == sorted(good)
        assert consumer.stats.retries == 0  # decided as one batch, not one by one
    finally:
        await engine.dispose()
