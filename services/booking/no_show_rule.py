"""The hub's no-show rule applied to a request or a move (docs/scorecards.md).

A carrier above the hub's no-show rate may book only a shorter horizon ahead: a request
or a move to a slot beyond it is refused with ``horizon_limited_no_shows``
(``command_rejected.v2``; nothing stored, so the same reference may ask again for a
nearer slot). The carrier's record is read as it is at the command's event time: the
stored bookings, overlaid with what this batch has decided before the command (no-shows
settled at this very ``now`` included), so a replay decides exactly as the live run did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts.booking import BookingCommandRejectedV2, CommandRejectionReasonV2
from services.booking import scorecard_store, scorecards
from services.booking.answers import rejected_v2
from services.booking.domain import HubConfig
from services.booking.ledger import Ledger
from services.runtime.uow import UnitOfWork


async def refusal(
    uow: UnitOfWork,
    ledger: Ledger,
    hub: HubConfig | None,
    command: Any,
    slot: datetime,
    now: datetime,
) -> BookingCommandRejectedV2 | None:
    """The refusal of ``command`` (a request or a move of ``command.carrier_id`` to
    ``slot`` at ``hub``) under the hub's no-show rule, or None."""
    if hub is None or not scorecards.may_limit(hub, slot, now):
        return None
    rule = hub.no_show_rule
    assert rule is not None  # may_limit: the hub has a rule
    # what this batch holds of the carrier at the hub is as it is at `now` (a no-show
    # settled at this very time is not saved yet): counted from memory, the rest by SQL
    held = [
        (booking.id, booking.slot_start, booking.status)
        for booking in ledger.bookings.values()
        if booking.hub_id == hub.id and booking.carrier_id == command.carrier_id
    ]
    stored_no_shows, stored_due = await scorecard_store.settled_counts(
        uow.session,
        hub.id,
        command.carrier_id,
        scorecards.window_start(rule, now),
        now,
        excluding=(booking_id for booking_id, _, _ in held),
    )
    held_no_shows, held_due = scorecards.settled_in_window(
        rule, ((start, status) for _, start, status in held), now=now
    )
    limit = scorecards.limit_for(
        rule, no_shows=stored_no_shows + held_no_shows, due=stored_due + held_due
    )
    if limit is None:
        return None
    message = scorecards.beyond_limit(hub, limit, command.carrier_id, slot, now)
    if message is None:
        return None
    return rejected_v2(command, CommandRejectionReasonV2.HORIZON_LIMITED_NO_SHOWS, message)
