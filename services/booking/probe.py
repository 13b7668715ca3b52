"""What a batch's hubs hold besides bookings, asked in one statement before it is read.

A batch of commands is decided against its hubs' closures, waiting lists and standing
series, and against the catalogue's hubs. Each of those is read with its own statement
(on PostgreSQL ``FOR UPDATE``), and for most batches the first three find nothing: a
hub is rarely closed, rarely has a waiting list, and most carriers book slot by slot.
Each statement is a round trip and ~0.2 ms of the service's CPU whatever it finds, and
a transaction's fixed cost is what a small batch (1 000 commands/s: ~35 a batch) pays
most for (docs/booking-throughput.md).

So the batch first asks, in one statement, for the catalogue's stamps and whether any
row meets each of the three reads' conditions; a read whose answer is no is not made.
Each condition is the read's own (closures.IN_FORCE_LATELY, waiting_list.OF_HUBS) or
wider than it (series.ACTIVE_AT_HUBS: without the reach, which needs the hubs'
horizons), so a row a read would return is never missed. The locks stay as they were: a
read that finds rows still runs and locks them, and one that finds none locked nothing
either (a row committed after the probe is one committed after the read). Commands that
name a closure or a series still read it by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.booking import closures, series, store, waiting_list

_FLAGS = select(
    exists().where(closures.IN_FORCE_LATELY).label("closures"),
    exists().where(waiting_list.OF_HUBS).label("waiting"),
    exists().where(*series.ACTIVE_AT_HUBS).label("series"),
).subquery("flags")
# one row of flags, with each hub's stamp beside it (none: the catalogue is empty)
_PROBE = select(
    _FLAGS.c.closures, _FLAGS.c.waiting, _FLAGS.c.series, store.hubs.c.id, store.hubs.c.updated_at
).select_from(_FLAGS.outerjoin(store.hubs, true()))


@dataclass(frozen=True)
class Probe:
    """Each hub's last change (HubCatalogue.current), and whether the batch's hubs may
    have a closure in force lately, a waiting list, an active series."""

    stamps: dict[str, datetime]
    closures: bool
    waiting: bool
    series: bool

    @classmethod
    async def read(cls, session: AsyncSession, hub_ids: Iterable[str], *, since: datetime) -> Probe:
        """``since``: the batch's earliest event time (Closures.load)."""
        values = {"hub_ids": sorted(set(hub_ids)), "after": closures.read_after(since)}
        rows = (await session.execute(_PROBE, values)).all()
        first = rows[0]
        return cls(
            stamps={r.id: r.updated_at for r in rows if r.id is not None},
            closures=bool(first.closures),
            waiting=bool(first.waiting),
            series=bool(first.series),
        )
