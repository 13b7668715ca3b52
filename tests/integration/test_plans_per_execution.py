"""PostgreSQL plans each of the services' statements with its parameters, never with a
generic plan cached from an earlier moment. asyncpg prepares every statement, and after
five executions PostgreSQL may keep a generic plan built on that moment's statistics: a
batch's read of bookings by id, prepared while the table was nearly empty, then read
ten thousand bookings by a sequential scan, every row against every id of the batch
(50 to 95 ms a read at 1 000 commands/s; docs/booking-throughput.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.booking.ledger import Ledger

NOW = datetime(2026, 12, 7, 8, tzinfo=UTC)


async def test_a_batchs_reads_are_planned_with_their_parameters_every_time(
    booking_engine_pg,
) -> None:
    engine = booking_engine_pg
    async with engine.connect() as connection:
        session = AsyncSession(bind=connection)
        for batch in range(12):  # well past the five custom plans before a generic one
            async with session.begin():
                await Ledger.load(
                    session,
                    {},
                    booking_ids=[f"b-{batch}-{i}" for i in range(3)],
                    slots=[("hub-a", NOW + timedelta(minutes=30 * batch))],
                    no_shows_before={"hub-a": NOW},
                )
        # the connection's own prepared statements: the ledger's reads among them
        plans = (
            await connection.exec_driver_sql(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            )
        ).all()
        await session.close()
    # with parameters: a statement without any has only the one plan (counted generic)
    reads = [
        p
        for p in plans
        if "$1" in p.statement
        and ("FROM bookings" in p.statement or "FROM slot_usage" in p.statement)
    ]
    assert len(reads) >= 3 and all(p.custom_plans >= 12 for p in reads), reads
    assert [p.statement for p in plans if "$1" in p.statement and p.generic_plans] == []


async def test_the_setting_is_the_services_own_not_the_servers(booking_engine_pg) -> None:
    """What a server's default would say (`auto`) does not decide it."""
    engine = booking_engine_pg
    async with engine.connect() as connection:
        mode = (await connection.execute(text("SHOW plan_cache_mode"))).scalar_one()
        default = (
            await connection.execute(
                text("SELECT boot_val FROM pg_settings WHERE name = 'plan_cache_mode'")
            )
        ).scalar_one()
    assert (mode, default) == ("force_custom_plan", "auto")
