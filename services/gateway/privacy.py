"""The gateway's part of the personal data purge (docs/privacy.md).

A webhook delivery keeps the event it delivers (a carrier's confirmation holds its
customers' addresses) so that the carrier can have it sent again; created more than the
retention ago, the delivery keeps its log (status, attempts, errors) and loses the event.
The sender fails a delivery still pending then ("the event was purged").

Which forwarded command was which carrier's (ids only) is needed until booking answers,
within seconds: forgotten with the same retention, like everything else kept per command.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import store
from services.runtime.db import rowcount
from services.runtime.privacy import Counts

d = store.webhook_deliveries.c


async def purge(session: AsyncSession, before: datetime, now: datetime) -> Counts:
    result = await session.execute(
        update(store.webhook_deliveries)
        .where(d.payload.is_not(None), d.created_at < before)
        .values(payload=None)
        .execution_options(synchronize_session=False)
    )
    forwarded = await session.execute(
        delete(store.forwarded_commands)
        .where(store.forwarded_commands.c.forwarded_at < before)
        .execution_options(synchronize_session=False)
    )
    return {
        "webhook_deliveries.payload": rowcount(result),
        "forwarded_commands": rowcount(forwarded),
    }
