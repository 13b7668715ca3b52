"""PostgreSQL connections are pinged before use only after they sat idle
(services/runtime/db.py ``ping_when_idle``): a batch's transactions reuse a connection
without the three round trips of a ping, and a connection the server dropped while it sat
in the pool is still found and replaced before a statement fails on it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from services.runtime import db
from services.runtime.consumer import is_transient
from services.runtime.db import make_engine


async def _backend_pid(engine: Any) -> int:
    async with engine.begin() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_used_again_at_once_is_not_pinged(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    pings = []
    real_ping = engine.dialect.do_ping
    engine.dialect.do_ping = lambda c: pings.append(c) or real_ping(c)  # type: ignore[method-assign]
    try:
        pids = {await _backend_pid(engine) for _ in range(20)}
    finally:
        await engine.dispose()
    assert len(pids) == 1  # one pooled connection, reused
    assert pings == []


async def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every checked-in connection counts as idle: no waiting for the real threshold
    monkeypatch.setattr(db, "PING_IDLE_AFTER_SECONDS", 0.0)
    engine = make_engine(postgres_url)
    admin = make_engine(postgres_url)
    try:
        first = await _backend_pid(engine)
        async with admin.begin() as conn:  # a restart, an idle timeout, an administrator
            killed = await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
            assert killed.scalar_one() is True
        # the pool still holds the dropped connection; the ping finds it gone
        second = await _backend_pid(engine)
        assert second != first
    finally:
        await admin.dispose()
        await engine.dispose()


async def test_a_connection_dropped_a_moment_before_use_fails_as_transient_once(
    postgres_url: str,
) -> None:
    """Within the idle second there is no ping: a connection the server dropped just then
    fails its statement, as a transient failure (a consumer retries it, nothing is
    dead-lettered), and the pool hands out a new connection for the retry."""
    engine = make_engine(postgres_url)
    admin = make_engine(postgres_url)
    try:
        first = await _backend_pid(engine)
        async with admin.begin() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
        outcomes: list[object] = []
        for _ in range(2):
            try:
                outcomes.append(await _backend_pid(engine))
            except Exception as exc:
                outcomes.append(exc)
        # either the close was read before the checkout (replaced at once) or the first
        # statement failed; never twice, and never as a failure a consumer gives up on
        assert not isinstance(outcomes[-1], Exception)
        assert outcomes[-1] != first
        if isinstance(outcomes[0], Exception):
            assert is_transient(outcomes[0])
    finally:
        await admin.dispose()
        await engine.dispose()
