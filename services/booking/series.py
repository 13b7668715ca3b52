"""Standing bookings: a carrier's series decided in the booking batch (handlers.py).

A series command books each occurrence within the hub's booking horizon as an ordinary
request (``BookingHandlers.request``: same rules, same ledger, so capacity is taken and
checked exactly as for any request) under the occurrence's own reference; the answers
of those requests and the series' own answer together answer the command. As event time
moves the horizon (any command of the hub, or the wall-clock sweep of a quiet hub), the
next occurrences are booked the same way; their answers answer no command, like a
no-show. Occurrence ids are derived from the rule, so a replay or redelivery finds the
booking already there and books nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.booking import BookingCancellationRequested, BookingRequested
from contracts.booking.series import (
    SeriesAccepted,
    SeriesCancelled,
    SeriesCancelRequested,
    SeriesOccurrence,
    SeriesRejected,
    SeriesRejectionReason,
    SeriesRequested,
    series_id_for,
)
from services.booking import domain, series_rows, series_rules
from services.booking.domain import BookingStatus, HubConfig
from services.booking.ledger import Ledger
from services.booking.store import series as series_table
from services.runtime.db import dialect_name
from services.runtime.uow import UnitOfWork

Book = Callable[[UnitOfWork, Ledger, BookingRequested, datetime], Awaitable[None]]
Cancel = Callable[[UnitOfWork, Ledger, BookingCancellationRequested, datetime], None]

ACTIVE, CANCELLED = "active", "cancelled"


def named(commands: Iterable[Any]) -> list[str]:
    """The ids of the series a batch's commands name."""
    return [
        series_id_for(c.carrier_id, c.carrier_reference)
        for c in commands
        if isinstance(c, SeriesRequested | SeriesCancelRequested)
    ]


def fingerprint(command: SeriesRequested) -> str:
    canonical = json.dumps(command.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def refusal(command: SeriesRequested) -> SeriesRejected | None:
    """A series whose rule is refused (before it is decided; nothing stored)."""
    parsed = series_rules.parse(command.rrule, command.dtstart)
    if isinstance(parsed, series_rules.Problem):
        return rejected(command, parsed.reason, parsed.message)
    return None


def rejected(
    command: SeriesRequested | SeriesCancelRequested, reason: SeriesRejectionReason, message: str
) -> SeriesRejected:
    return SeriesRejected(
        series_id=series_id_for(command.carrier_id, command.carrier_reference),
        carrier_id=command.carrier_id,
        carrier_reference=command.carrier_reference,
        hub_id=command.hub_id,
        command_type=command.event_type,
        reason=reason,
        message=message,
    )


# built once, the lists as expanding parameters (ledger.py says why)
_SERIES = select(series_table).where(series_table.c.id.in_(bindparam("ids", expanding=True)))
# an active series at a batch's hubs (probe.py asks whether any exists: the reach below
# needs the hubs' horizons, which the probe does not know yet)
ACTIVE_AT_HUBS = (
    series_table.c.hub_id.in_(bindparam("hub_ids", expanding=True)),
    series_table.c.status == ACTIVE,
)
_REACHED = select(series_table).where(
    *ACTIVE_AT_HUBS, series_table.c.next_occurrence <= bindparam("reach")
)
_SERIES_LOCKED, _REACHED_LOCKED = _SERIES.with_for_update(), _REACHED.with_for_update()


class Standing:
    """The series one batch reads and changes: loaded with two statements, saved with a
    few."""

    def __init__(self, rows: Iterable[series_rows.Series]) -> None:
        self.series = {s.id: s for s in rows}
        self.by_hub: dict[str, list[series_rows.Series]] = {}
        for found in self.series.values():
            self.by_hub.setdefault(found.hub_id, []).append(found)
        self.new: set[str] = set()
        self.dirty: set[str] = set()

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        hubs: dict[str, HubConfig],
        *,
        series_ids: Iterable[str],
        hubs_at: dict[str, datetime],
        none_active: bool = False,
    ) -> Standing:
        """The series named by the batch's commands, and the active series of its hubs
        whose next occurrence the horizon reaches by the batch's latest event time.
        ``none_active``: the batch's probe found no active series at its hubs
        (probe.py)."""
        locking = dialect_name(session) == "postgresql"
        found: list[Any] = []
        wanted = sorted(set(series_ids))
        if wanted:
            query = _SERIES_LOCKED if locking else _SERIES
            found += await session.execute(query, {"ids": wanted})
        reaches = [
            at + timedelta(days=hubs[h].booking_horizon_days)
            for h, at in hubs_at.items()
            if h in hubs and not none_active
        ]
        if reaches:
            query = _REACHED_LOCKED if locking else _REACHED
            found += await session.execute(
                query, {"hub_ids": sorted(hubs_at), "reach": max(reaches)}
            )
        return cls(series_rows.Series(**dict(row._mapping)) for row in found)

    @classmethod
    async def sweep(cls, uow: UnitOfWork, ledger: Ledger, now: datetime, book: Book) -> Standing:
        """The wall-clock nudge (the no-show sweep's): every hub's series at ``now``."""
        standing = await cls.load(
            uow.session, ledger.hubs, series_ids=(), hubs_at=dict.fromkeys(ledger.hubs, now)
        )
        for hub_id in ledger.hubs:
            await standing.extend(uow, ledger, hub_id, now, book)
        return standing

    # --- commands ---------------------------------------------------------------------

    async def request(
        self, uow: UnitOfWork, ledger: Ledger, command: SeriesRequested, now: datetime, book: Book
    ) -> None:
        series_id = series_id_for(command.carrier_id, command.carrier_reference)
        printed = fingerprint(command)
        existing = self.series.get(series_id)
        if existing is not None:
            if existing.request_fingerprint == printed:  # sent again: the same answer
                uow.emit(series_rows.store_payload(existing.outcome), key=command.hub_id, time=now)
            else:
                uow.emit(
                    rejected(
                        command,
                        SeriesRejectionReason.IDEMPOTENCY_CONFLICT,
                        f"series reference {command.carrier_reference!r} was already used for "
                        f"a different series ({existing.status}); use a new reference",
                    ),
                    key=command.hub_id,
                    time=now,
                )
            return
        problem = refusal(command)
        if problem is not None:  # answers.py refuses it before the batch; kept for safety
            uow.emit(problem, key=command.hub_id, time=now)
            return
        hub = ledger.hubs.get(command.hub_id)
        if hub is None:
            reason = SeriesRejectionReason.UNKNOWN_HUB
            message = f"there is no hub {command.hub_id!r}"
            uow.emit(rejected(command, reason, message), key=command.hub_id, time=now)
            return
        created = series_rows.Series(
            id=series_id,
            carrier_id=command.carrier_id,
            carrier_reference=command.carrier_reference,
            hub_id=hub.id,
            rule=command.rrule,
            dtstart=command.dtstart.isoformat(),
            consignment=command.consignment.model_dump(mode="json"),
            request_fingerprint=printed,
            status=ACTIVE,
            booked_until=now,  # nothing before the command is booked
            next_occurrence=None,  # set once the horizon's occurrences are booked
            outcome={},
            cancellation=None,
            created_at=now,
            updated_at=now,
        )
        decided = await self._book_due(uow, ledger, hub, created, now, book)
        accepted = SeriesAccepted(
            series_id=series_id,
            carrier_id=created.carrier_id,
            carrier_reference=created.carrier_reference,
            hub_id=hub.id,
            rrule=created.rule,
            dtstart=command.dtstart,
            timezone=hub.city.timezone,
            booked_until=created.booked_until,
            occurrences=decided,
        )
        created.outcome = {"type": accepted.event_type, "data": accepted.model_dump(mode="json")}
        self.series[series_id] = created
        self.by_hub.setdefault(created.hub_id, []).append(created)
        self.new.add(series_id)
        uow.emit(accepted, key=hub.id, time=now)

    async def cancel(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        command: SeriesCancelRequested,
        now: datetime,
        cancel: Cancel,
    ) -> None:
        found = self.series.get(series_id_for(command.carrier_id, command.carrier_reference))
        if found is None or found.hub_id != command.hub_id:
            reason, message = (
                (SeriesRejectionReason.UNKNOWN_SERIES, "no series with this reference")
                if found is None
                else (SeriesRejectionReason.WRONG_HUB, f"the series is at hub {found.hub_id}")
            )
            uow.emit(rejected(command, reason, message), key=command.hub_id, time=now)
            return
        if found.cancellation is not None:  # cancelled already: that answer again
            uow.emit(series_rows.store_payload(found.cancellation), key=found.hub_id, time=now)
            return
        hub = ledger.hubs.get(found.hub_id)
        zone = hub.zone if hub is not None else None
        later = (
            series_rules.occurrences(found.parsed, zone, now, found.booked_until) if zone else []
        )
        references = [o.reference(found.carrier_reference) for o in later]
        ids = [domain.booking_id_for(found.carrier_id, r) for r in references]
        await series_rows.widen(ledger, uow.session, booking_ids=ids, slots=())
        cancelled = []
        for reference, booking_id in zip(references, ids, strict=True):
            booking = ledger.find(booking_id)
            if booking is None or booking.status is not BookingStatus.CONFIRMED:
                continue
            if booking.slot_start <= now:  # moved to a slot that has begun: it stays
                continue
            cancel(
                uow,
                ledger,
                BookingCancellationRequested(
                    carrier_id=found.carrier_id,
                    carrier_reference=reference,
                    hub_id=found.hub_id,
                    reason=command.reason,
                ),
                now,
            )
            cancelled.append(booking_id)
        payload = SeriesCancelled(
            series_id=found.id,
            carrier_id=found.carrier_id,
            carrier_reference=found.carrier_reference,
            hub_id=found.hub_id,
            cancelled=cancelled,
            reason=command.reason,
        )
        found.status = CANCELLED
        found.cancellation = {"type": payload.event_type, "data": payload.model_dump(mode="json")}
        found.updated_at = now
        self.dirty.add(found.id)
        uow.emit(payload, key=found.hub_id, time=now)

    # --- the moving horizon -----------------------------------------------------------

    def has(self, hub_id: str) -> bool:
        """Has the hub a standing booking loaded (else :meth:`extend` has nothing to do)?"""
        return hub_id in self.by_hub

    async def extend(
        self, uow: UnitOfWork, ledger: Ledger, hub_id: str, now: datetime, book: Book
    ) -> int:
        """Book the occurrences of the hub's active series that the horizon reached at
        ``now``. Their answers answer no command. The number of occurrences decided."""
        hub = ledger.hubs.get(hub_id)
        if hub is None:
            return 0
        reach = now + timedelta(days=hub.booking_horizon_days)
        decided = 0
        for found in self.by_hub.get(hub_id, ()):
            due = found.next_occurrence
            if found.status != ACTIVE or due is None or due > reach:
                continue
            decided += len(await self._book_due(uow, ledger, hub, found, now, book))
            self._changed(found)
        return decided

    async def _book_due(
        self,
        uow: UnitOfWork,
        ledger: Ledger,
        hub: HubConfig,
        found: series_rows.Series,
        now: datetime,
        book: Book,
    ) -> list[SeriesOccurrence]:
        """Decide the occurrences after ``found.booked_until`` up to the horizon at ``now``,
        each as a request of its own; the series is then booked until the horizon."""
        reach = now + timedelta(days=hub.booking_horizon_days)
        due = series_rules.occurrences(found.parsed, hub.zone, found.booked_until, reach)
        references = [o.reference(found.carrier_reference) for o in due]
        ids = [domain.booking_id_for(found.carrier_id, r) for r in references]
        await series_rows.widen(
            ledger, uow.session, booking_ids=ids, slots=[(hub.id, o.slot_start) for o in due]
        )
        decided = []
        for occurrence, reference, booking_id in zip(due, references, ids, strict=True):
            await book(
                uow,
                ledger,
                BookingRequested.model_validate(
                    {
                        "carrier_id": found.carrier_id,
                        "carrier_reference": reference,
                        "hub_id": hub.id,
                        "slot_start": occurrence.slot_start,
                        "consignment": found.consignment,
                    }
                ),
                now,
            )
            booking = ledger.find(booking_id)
            assert booking is not None, "a request is always decided"
            decided.append(
                SeriesOccurrence(
                    booking_id=booking_id,
                    carrier_reference=reference,
                    slot_start=occurrence.slot_start,
                    local_start=occurrence.local_start,
                    status=booking.status.value,
                    reason=booking.reason,
                )
            )
        found.booked_until = reach
        upcoming = series_rules.next_after(found.parsed, hub.zone, reach)
        found.next_occurrence = upcoming.slot_start if upcoming else None
        found.updated_at = now
        return decided

    def _changed(self, found: series_rows.Series) -> None:
        if found.id not in self.new:
            self.dirty.add(found.id)

    # --- saving -----------------------------------------------------------------------

    async def save(self, session: AsyncSession) -> None:
        await series_rows.save(
            session,
            new=[self.series[i] for i in sorted(self.new)],
            changed=[self.series[i] for i in sorted(self.dirty - self.new)],
        )
