"""Our aiosqlite connection (one thread hand-over per statement, or none with
``sqlite_inline``) behaves like SQLAlchemy's stock aiosqlite adapter: rows, row counts,
errors, rollbacks and aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, update
from sqlalchemy import exc as sa_exc

from services.runtime.db import UTCDateTime, make_engine, make_sessionmaker

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
    Column("at", UTCDateTime),
)


@pytest.fixture(params=[False, True], ids=["worker-thread", "inline"])
async def sessions(request, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", sqlite_inline=request.param)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_rows_counts_and_datetimes_round_trip(sessions) -> None:
    when = datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    async with sessions() as session, session.begin():
        result = await session.execute(
            insert(things), [{"name": "a", "at": when}, {"name": "b", "at": None}]
        )
        assert result.rowcount == 2
        changed = await session.execute(
            update(things).where(things.c.name == bindparam("b_name")), {"b_name": "b", "at": when}
        )
        assert changed.rowcount == 1
    async with sessions() as session:
        rows = (await session.execute(select(things.c.name, things.c.at).order_by("name"))).all()
    assert [tuple(r) for r in rows] == [("a", when), ("b", when)]
    assert rows[0].at.tzinfo is not None


async def test_errors_surface_and_roll_back(sessions) -> None:
    async with sessions() as session, session.begin():
        await session.execute(insert(things).values(name="only"))
    with pytest.raises(sa_exc.IntegrityError):
        async with sessions() as session, session.begin():
            await session.execute(insert(things).values(name="new"))
            await session.execute(insert(things).values(name="only"))  # unique
    async with sessions() as session:
        names = (await session.execute(select(things.c.name))).scalars().all()
    assert names == ["only"]  # "new" went with the failed transaction


def test_a_connection_left_open_does_not_keep_the_process_alive(tmp_path) -> None:
    """A pool that is never disposed (a crash, a forgotten ``dispose()``) must not hang
    the interpreter's exit on aiosqlite's worker thread: it hung a CI run once."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import asyncio
        from sqlalchemy import text
        from services.runtime.db import make_engine

        async def main():
            engine = make_engine("sqlite:///{tmp_path / "open.db"}")
            conn = await engine.connect()  # never closed, never disposed
            await conn.execute(text("select 1"))
            globals()["kept"] = (engine, conn)
            print("opened", flush=True)

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "opened" in done.stdout
