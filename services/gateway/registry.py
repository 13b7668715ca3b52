"""The carrier registry in the gateway's database: the file's carriers (upserted on start and
by `microhub carriers apply`) and those the admin API adds, changes or deactivates.

The ingress and the egress ask it for every record; it is read at most every few seconds
(``Registry.active``), so a change made through the API by another process counts within
that long.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import store
from services.runtime.carriers import Carrier
from services.runtime.db import upsert

REFRESH_SECONDS = 2.0

# built once: it is read again every few seconds by every consumer (handlers.py says why)
_ACTIVE = select(store.carriers.c.id).where(store.carriers.c.active == 1)


async def upsert_carriers(
    session: AsyncSession, carriers: Iterable[Carrier], *, origin: str
) -> None:
    now = datetime.now(UTC)
    rows = [
        {"id": c.id, "name": c.name, "active": int(c.active), "origin": origin, "updated_at": now}
        for c in carriers
    ]
    if rows:
        statement = upsert(session, store.carriers, "id", "name", "active", "origin", "updated_at")
        await session.execute(statement, rows)


async def all_carriers(session: AsyncSession) -> list[Carrier]:
    rows = await session.execute(
        select(store.carriers.c.id, store.carriers.c.name, store.carriers.c.active).order_by(
            store.carriers.c.id
        )
    )
    return [Carrier(row.id, row.name, bool(row.active)) for row in rows]


async def get_carrier(session: AsyncSession, carrier_id: str) -> Carrier | None:
    row = (
        await session.execute(select(store.carriers).where(store.carriers.c.id == carrier_id))
    ).first()
    return Carrier(row.id, row.name, bool(row.active)) if row else None


def describe(carrier: Carrier, prefix: str = "") -> dict[str, Any]:
    """What a carrier needs to connect: its topics, SASL user and consumer groups."""
    from contracts.topics import CARRIER_COMMANDS, CARRIER_EVENTS
    from services.runtime.carriers import group_prefix, user_of

    return {
        "id": carrier.id,
        "name": carrier.name,
        "active": carrier.active,
        "commands_topic": prefix + CARRIER_COMMANDS.for_carrier(carrier.id),
        "events_topic": prefix + CARRIER_EVENTS.for_carrier(carrier.id),
        "sasl_user": prefix + user_of(carrier.id),
        "consumer_group_prefix": prefix + group_prefix(carrier.id),
    }


class Registry:
    """The active carriers, read again when the last read is a few seconds old."""

    def __init__(self, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.refresh_seconds = refresh_seconds
        self._active: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    async def active(self, session: AsyncSession) -> frozenset[str]:
        if time.monotonic() - self._read_at > self.refresh_seconds:
            rows = await session.execute(_ACTIVE)
            self._active = frozenset(rows.scalars())
            self._read_at = time.monotonic()
        return self._active

    def forget(self) -> None:
        """Read again next time (after this process changed the registry)."""
        self._read_at = float("-inf")
