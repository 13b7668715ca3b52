"""The capacity guard docs/architecture.md claims: two booking instances overlapping
during a rebalance decide against the same slot on PostgreSQL — the second one's ledger
waits for the first one's lock, then sees what it took. Exactly one gets the last
capacity, and the slot is never over capacity.

The race is forced, not hoped for: the second transaction is shown waiting on the first
one's row lock (pg_stat_activity) before the first commits.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.booking import store
from services.booking.domain import HubConfig
from services.booking.ledger import Ledger
from services.booking.service import BookingService
from services.runtime.db import make_engine, make_sessionmaker
from tests.support.hubs import hub_config
from tests.support.waiting import eventually

SLOT = datetime(2027, 3, 2, 8, tzinfo=UTC)


async def _waiting_on_a_lock(engine, application_name: str) -> bool:
    async with engine.connect() as conn:
        waiting = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = :name AND wait_event_type = 'Lock'"
            ),
            {"name": application_name},
        )
        return bool(waiting.scalar_one())


@pytest.mark.parametrize(
    ("docks", "volume_l"),
    [(2, 500), (5, 4_000)],
    ids=["the-last-dock", "the-last-volume"],
)
async def test_two_instances_racing_for_the_last_capacity_one_wins(
    postgres_url: str, docks: int, volume_l: int
) -> None:
    # 5 m3 a slot; one booking of 1 000 l holds a dock already
    hub = HubConfig.model_validate(hub_config(docks_per_slot=docks, volume_per_slot_m3=5.0))
    engine = make_engine(postgres_url)
    await BookingService.spec.migrate(engine)
    sessions = make_sessionmaker(engine)

    async def ledger_of(session) -> Ledger:
        return await Ledger.load(
            session, {hub.id: hub}, booking_ids=(), slots={(hub.id, SLOT)}, no_shows_before={}
        )

    try:
        async with sessions() as session, session.begin():
            await store.upsert_hub(session, hub)
            held = await ledger_of(session)
            assert held.take(hub, SLOT, 1_000)
            await held.save(session)

        first = sessions()
        await first.begin()
        mine = await ledger_of(first)  # locks the slot's row until commit
        assert mine.take(hub, SLOT, volume_l)
        await mine.save(first)

        async def second_instance() -> bool:
            async with sessions() as session, session.begin():
                await session.execute(text("SET application_name = 'second-instance'"))
                theirs = await ledger_of(session)
                taken = theirs.take(hub, SLOT, volume_l)
                await theirs.save(session)
                return taken

        racing = asyncio.create_task(second_instance())
        # the second ledger's read really happens while the first transaction is open
        await eventually(
            lambda: _waiting_on_a_lock(engine, "second-instance"),
            what="the second instance to wait on the first one's lock",
            timeout=10,
            interval=0.01,
        )
        assert not racing.done()
        await first.commit()
        await first.close()

        assert await asyncio.wait_for(racing, timeout=10) is False
        async with sessions() as session:
            usage = await store.usage_of(session, hub.id, SLOT)
        assert usage.docks_used <= hub.docks_per_slot
        assert usage.volume_used_l <= hub.volume_per_slot_l
        assert (usage.docks_used, usage.volume_used_l) == (2, 1_000 + volume_l)
    finally:
        await engine.dispose()
