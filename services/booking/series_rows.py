"""The rows of standing bookings (store.py's ``series`` table) as one batch reads and
writes them, and the widening of the batch's ledger to the slots and bookings of the
occurrences it decides (series.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dateutil.rrule import rrule
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import REGISTRY
from services.booking import domain, series_rules, store
from services.booking.ledger import Ledger
from services.booking.store import series as series_table
from services.runtime.db import dialect_name, insert_ignoring
from services.runtime.privacy import Counts, scrub


@dataclass
class Series:
    id: str
    carrier_id: str
    carrier_reference: str
    hub_id: str
    rule: str
    dtstart: str
    consignment: dict[str, Any]
    request_fingerprint: str
    status: str
    booked_until: datetime
    next_occurrence: datetime | None
    outcome: dict[str, Any]
    cancellation: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    purged_at: datetime | None = None
    _parsed: rrule | None = field(default=None, repr=False)

    @property
    def parsed(self) -> rrule:
        if self._parsed is None:
            rule = series_rules.parse(self.rule, datetime.fromisoformat(self.dtstart))
            assert not isinstance(rule, series_rules.Problem), "a stored rule was accepted"
            self._parsed = rule
        return self._parsed

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


async def save(session: AsyncSession, *, new: list[Series], changed: list[Series]) -> None:
    if new:
        await session.execute(series_table.insert(), [s.row() for s in new])
    if changed:
        await session.execute(
            update(series_table)
            .where(series_table.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                booked_until=bindparam("b_booked_until"),
                next_occurrence=bindparam("b_next"),
                cancellation=bindparam("b_cancellation"),
                updated_at=bindparam("b_updated_at"),
            ),
            [
                {"b_id": s.id, "b_status": s.status, "b_booked_until": s.booked_until,
                 "b_next": s.next_occurrence,
                 "b_cancellation": s.cancellation, "b_updated_at": s.updated_at}
                for s in changed
            ],
        )  # fmt: skip


def store_payload(document: dict[str, Any]) -> Any:
    return REGISTRY[document["type"]].model_validate(document["data"])


async def widen(
    ledger: Ledger,
    session: AsyncSession,
    *,
    booking_ids: Iterable[str],
    slots: Iterable[tuple[str, datetime]],
) -> None:
    """Load into the batch's ledger the bookings and slots an occurrence reads that the
    batch did not name up front (locked as Ledger.load locks them)."""
    locking = dialect_name(session) == "postgresql"
    wanted = sorted(set(booking_ids) - set(ledger.bookings))
    if wanted:
        query = select(store.bookings).where(store.bookings.c.id.in_(wanted))
        for row in await session.execute(query.with_for_update() if locking else query):
            ledger.bookings[row.id] = store.row_to_booking(row)
    held = {(b.hub_id, b.slot_start) for i in wanted if (b := ledger.bookings.get(i)) is not None}
    # a slot the ledger has already is never read again: its usage there may be this
    # batch's, not yet saved
    missing = sorted((set(slots) | held) - set(ledger.usage))
    if not missing:
        return
    await session.execute(
        insert_ignoring(session, store.slot_usage, "hub_id", "slot_start"),
        [{"hub_id": h, "slot_start": s, "docks_used": 0, "volume_used_l": 0} for h, s in missing],
    )
    usage = store.slot_usage.c
    for hub_id, slot in missing:  # few per batch: a series' next occurrences
        query = select(usage.docks_used, usage.volume_used_l).where(
            usage.hub_id == hub_id, usage.slot_start == slot
        )
        row = (await session.execute(query.with_for_update() if locking else query)).one()
        ledger.usage[hub_id, slot] = domain.SlotUsage(row.docks_used, row.volume_used_l)


async def purge(session: AsyncSession, before: datetime, now: datetime) -> Counts:
    """The personal data purge of series (docs/privacy.md): a series cancelled before
    ``before`` books nothing any more, so its consignment's stops are rounded and the
    carrier's free-text cancellation reason dropped; ``purged_at`` marks it done. An
    active series keeps its consignment: its next occurrences are requested with it."""
    s = series_table.c
    rows = (
        await session.execute(
            select(s.id, s.consignment, s.cancellation).where(
                s.status == "cancelled", s.purged_at.is_(None), s.updated_at < before
            )
        )
    ).all()
    if rows:
        await session.execute(
            update(series_table)
            .where(s.id == bindparam("b_id"))
            .values(
                consignment=bindparam("b_consignment"),
                cancellation=bindparam("b_cancellation"),
                purged_at=bindparam("b_purged_at"),
            )
            .execution_options(synchronize_session=False),
            [
                {"b_id": r.id, "b_consignment": scrub(r.consignment),
                 "b_cancellation": _without_reason(r.cancellation), "b_purged_at": now}
                for r in rows
            ],
        )  # fmt: skip
    return {"series (consignment, cancellation)": len(rows)}


def _without_reason(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "data": {**document["data"], "reason": None}}
