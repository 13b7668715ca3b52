"""The live queue's change log (services/dispatch/changes.py) on both databases: written
in the changing transaction, numbered per hub without gaps even with concurrent writers,
followed from another process's connection (NOTIFY on PostgreSQL, polling on SQLite),
pruned, and a viewer that missed rows told to resync.

Writer and reader are separate engines and ChangeLog objects, as in two processes: the
reader is never woken by the writer's in-process hint."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dispatch import changes as changes_module
from services.dispatch.changes import RESYNC, ChangeLog, Subscription
from services.dispatch.service import DispatchService
from services.dispatch.tables import hub_change_heads, hub_changes
from services.runtime.db import make_engine, make_sessionmaker
from tests.support.waiting import eventually


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    writer, reader = make_engine(database_url), make_engine(database_url)
    await DispatchService.spec.migrate(writer)
    yield writer, reader
    await writer.dispose()
    await reader.dispose()


@pytest.fixture
async def logs(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> AsyncIterator[tuple[ChangeLog, ChangeLog]]:
    writer, reader = ChangeLog(engines[0]), ChangeLog(engines[1])
    yield writer, reader
    await reader.stop()
    await writer.stop()


async def write(log: ChangeLog, *changes: tuple[str, str], fail: bool = False) -> None:
    """One transaction noting ``(hub, kind)`` changes; ``fail`` rolls it back."""
    sessions = make_sessionmaker(log.engine)
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext():
        async with sessions() as session, session.begin():
            for hub_id, kind in changes:
                log.record(session, hub_id, kind)
            if fail:
                raise RuntimeError("rolled back")


async def next_batch(subscription: Subscription, timeout: float = 10) -> list[dict]:
    return await asyncio.wait_for(subscription.queue.get(), timeout)


async def test_a_viewer_elsewhere_gets_committed_changes_and_never_rolled_back_ones(
    logs: tuple[ChangeLog, ChangeLog],
) -> None:
    writer, reader = logs
    watching = await reader.subscribe("hub-a")
    assert watching.after == 0
    if not reader.sqlite:
        # PostgreSQL: the follower must be woken by NOTIFY, not by its 5 s safety poll
        await eventually(lambda: reader.listening, what="the follower to LISTEN", timeout=10)

    await write(writer, ("hub-a", "rolled"), fail=True)
    await write(writer, ("hub-a", "first"), ("hub-b", "elsewhere"), ("hub-a", "second"))
    batch = await next_batch(watching)
    assert batch == [{"kind": "first"}, {"kind": "second"}]  # one row: one transaction
    assert watching.after == 1
    if not reader.sqlite:
        assert reader.notifications >= 1

    await reader.catch_up()
    assert watching.queue.empty()  # nothing else: the rolled-back change never existed
    assert await reader.head("hub-a") == 1 and await reader.head("hub-b") == 1
    assert await reader.head("nowhere") == 0

    reader.unsubscribe(watching)
    assert reader.subscribers("hub-a") == 0


async def test_concurrent_writers_number_a_hub_without_gaps_and_a_viewer_misses_nothing(
    engines: tuple[AsyncEngine, AsyncEngine], logs: tuple[ChangeLog, ChangeLog]
) -> None:
    """Two 'instances' write the same hub at once; on PostgreSQL each transaction waits
    for the hub's head row, so numbers follow commit order and a follower reading all the
    while never sees a later number before an earlier one."""
    writer, reader = logs
    other = ChangeLog(engines[1])
    watching = await reader.subscribe("hub-a")
    total = 40

    async def one(i: int) -> None:
        await write(writer if i % 2 else other, ("hub-a", f"c{i}"), (f"hub-{i % 3}", "x"))

    await asyncio.gather(*(one(i) for i in range(total)))
    seen: list[dict] = []
    while len(seen) < total:
        seen.extend(await next_batch(watching))
    assert RESYNC not in seen
    assert sorted(c["kind"] for c in seen) == sorted(f"c{i}" for i in range(total))

    async with engines[0].connect() as conn:
        versions = (
            await conn.execute(
                select(hub_changes.c.version)
                .where(hub_changes.c.hub_id == "hub-a")
                .order_by(hub_changes.c.version)
            )
        ).scalars()
        assert list(versions) == list(range(1, total + 1))
        head = (
            await conn.execute(
                select(hub_change_heads.c.version).where(hub_change_heads.c.hub_id == "hub-a")
            )
        ).scalar_one()
    assert head == total


async def test_pruned_or_too_many_changes_make_a_viewer_resync(
    logs: tuple[ChangeLog, ChangeLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, reader = logs
    behind = await reader.subscribe("hub-a")
    await reader.stop()  # catch up by hand from here
    await write(writer, ("hub-a", "one"))
    await write(writer, ("hub-a", "two"))
    assert await writer.prune(older_than=timedelta(0)) == 2
    await reader.catch_up()
    assert await next_batch(behind) == [RESYNC]
    assert behind.after == 2  # the head: numbers never restart after a prune

    await write(writer, ("hub-a", "three"))
    await reader.catch_up()
    assert await next_batch(behind) == [{"kind": "three"}]

    # far behind: the last MAX_CATCH_UP changes and a resync; a current viewer is exact
    monkeypatch.setattr(changes_module, "MAX_CATCH_UP", 2)
    for kind in ("four", "five", "six"):
        await write(writer, ("hub-a", kind))
    current = Subscription("hub-a", 5, asyncio.Queue())
    reader._subscriptions["hub-a"].add(current)
    await reader.catch_up()
    assert await next_batch(behind) == [RESYNC, {"kind": "five"}, {"kind": "six"}]
    assert await next_batch(current) == [{"kind": "six"}]


def test_a_viewer_too_slow_to_keep_up_is_told_to_resync_not_buffered() -> None:
    slow = Subscription("hub-a", 0, asyncio.Queue(maxsize=2))
    for version in range(1, 5):
        slow.deliver([(version, [{"kind": f"c{version}"}])], head=version)
    # c1 and c2 filled its queue, c3 found it full: dropped for a resync; c4 follows
    assert [slow.queue.get_nowait() for _ in range(slow.queue.qsize())] == [
        [RESYNC],
        [{"kind": "c4"}],
    ]
    assert slow.after == 4


async def test_stopping_right_after_a_change_woke_the_follower_stops_it(
    logs: tuple[ChangeLog, ChangeLog],
) -> None:
    # the wake completes the follower's wait as the cancellation arrives: Python 3.11's
    # wait_for returned the wait's result then and the follower ran on, stop() for ever
    _, reader = logs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            await reader.subscribe("hub-a")
            follower = reader._task
            assert follower is not None
            reader.wake()
            stopping = asyncio.create_task(reader.stop())
            done, _ = await asyncio.wait({stopping}, timeout=4)  # waits; cancels nothing
            assert stopping in done, "stop() still waiting for the follower"
            assert follower.done()
        gc.collect()
    # nor a connection left behind: one the stop cancelled while it began to LISTEN was
    # dropped unreturned (SQLAlchemy warns when the garbage collector finds it)
    leaked = [str(w.message) for w in caught if "non-checked-in connection" in str(w.message)]
    assert leaked == []
