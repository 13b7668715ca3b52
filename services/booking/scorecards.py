"""Scorecards and the no-show rule: how carriers keep their bookings at a hub.

Pure: no I/O, no clock. The figures are defined in docs/scorecards.md; this module is
that definition in code. Booking owns the facts (it decides check-ins, cancellations,
moves and no-shows), so the scorecard and the rule that limits a carrier's horizon are
computed from the same stored bookings by the same functions and cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from contracts.hubs import HubConfig, NoShowRule
from services.booking.domain import BookingStatus


class Outcome(StrEnum):
    """What became of a booking: every booking of a month is in exactly one."""

    ON_TIME = "on_time"  # checked in no later than its slot's start
    LATE = "late"  # checked in after its slot's start
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"  # before the hub's cancellation cutoff
    LATE_CANCELLATION = "late_cancellation"
    PENDING = "pending"  # still confirmed: its slot is to come, or not yet settled


@dataclass(frozen=True)
class BookingFacts:
    """What a scorecard reads of one booking (rejected requests are no bookings)."""

    carrier_id: str
    slot_start: datetime
    status: BookingStatus
    checked_in_at: datetime | None = None
    cancelled_late: bool = False
    moves: int = 0
    late_moves: int = 0


def outcome_of(booking: BookingFacts) -> Outcome:
    if booking.status is BookingStatus.CHECKED_IN:
        assert booking.checked_in_at is not None, "a check-in keeps its time"
        return Outcome.ON_TIME if booking.checked_in_at <= booking.slot_start else Outcome.LATE
    if booking.status is BookingStatus.NO_SHOW:
        return Outcome.NO_SHOW
    if booking.status is BookingStatus.CANCELLED:
        return Outcome.LATE_CANCELLATION if booking.cancelled_late else Outcome.CANCELLED
    if booking.status is BookingStatus.CONFIRMED:
        return Outcome.PENDING
    raise ValueError(f"a {booking.status.value} request is no booking")


def ratio(part: int, whole: int) -> float | None:
    """A rate, or None when there is nothing to divide by (not 0: no data is no score)."""
    return part / whole if whole else None


@dataclass
class Scorecard:
    """One carrier's figures at one hub in one month (docs/scorecards.md)."""

    carrier_id: str
    hub_id: str
    month: str  # YYYY-MM in the hub's time zone
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    reschedules: int = 0
    late_reschedules: int = 0

    def add(self, booking: BookingFacts) -> None:
        self.outcomes[outcome_of(booking)] += 1
        self.reschedules += booking.moves
        self.late_reschedules += booking.late_moves

    @property
    def bookings(self) -> int:
        return sum(self.outcomes.values())

    @property
    def arrivals_due(self) -> int:
        """Bookings whose carrier was to come and it is settled whether it came."""
        o = self.outcomes
        return o[Outcome.ON_TIME] + o[Outcome.LATE] + o[Outcome.NO_SHOW]

    def figures(self) -> dict[str, object]:
        o = self.outcomes
        checked_in = o[Outcome.ON_TIME] + o[Outcome.LATE]
        return {
            "carrier_id": self.carrier_id,
            "hub_id": self.hub_id,
            "month": self.month,
            "bookings": self.bookings,
            "on_time_check_ins": o[Outcome.ON_TIME],
            "late_check_ins": o[Outcome.LATE],
            "no_shows": o[Outcome.NO_SHOW],
            "cancellations": o[Outcome.CANCELLED],
            "late_cancellations": o[Outcome.LATE_CANCELLATION],
            "pending": o[Outcome.PENDING],
            "reschedules": self.reschedules,
            "late_reschedules": self.late_reschedules,
            "on_time_rate": ratio(o[Outcome.ON_TIME], checked_in),
            "no_show_rate": ratio(o[Outcome.NO_SHOW], self.arrivals_due),
            "late_cancellation_rate": ratio(o[Outcome.LATE_CANCELLATION], self.bookings),
            "late_reschedule_rate": ratio(self.late_reschedules, self.reschedules),
        }


def parse_month(text: str) -> date:
    """``YYYY-MM`` as the first day of that month (ValueError otherwise)."""
    year, sep, month = text.partition("-")
    if not sep or len(year) != 4 or len(month) != 2 or not (year + month).isdigit():
        raise ValueError(f"month {text!r}: expected YYYY-MM")
    return date(int(year), int(month), 1)


def month_bounds(zone: ZoneInfo, month: date) -> tuple[datetime, datetime]:
    """The month's first and the next month's first instant in ``zone``, as UTC: a
    booking belongs to the month its slot starts in, on the hub's calendar."""
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    start = datetime.combine(month, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(following, datetime.min.time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def scorecards(hub: HubConfig, month: date, bookings: Iterable[BookingFacts]) -> list[Scorecard]:
    """Every carrier's scorecard at ``hub`` in ``month``, by carrier id; ``bookings``
    those whose slot starts in the month (others are refused: a caller's mistake)."""
    start, end = month_bounds(hub.zone, month)
    label = f"{month:%Y-%m}"
    cards: dict[str, Scorecard] = {}
    for booking in bookings:
        if not start <= booking.slot_start < end:
            raise ValueError(f"a booking of {booking.slot_start.isoformat()} is not of {label}")
        card = cards.setdefault(booking.carrier_id, Scorecard(booking.carrier_id, hub.id, label))
        card.add(booking)
    return [cards[c] for c in sorted(cards)]


# ------------------------------------------------------------------ the no-show rule ---


@dataclass(frozen=True)
class HorizonLimit:
    """A carrier's shortened horizon at a hub, and the figures that caused it."""

    rule: NoShowRule
    no_shows: int
    arrivals_due: int

    @property
    def rate(self) -> float:
        return self.no_shows / self.arrivals_due


def window_start(rule: NoShowRule, now: datetime) -> datetime:
    return now - timedelta(days=rule.window_days)


def settled_in_window(
    rule: NoShowRule, recent: Iterable[tuple[datetime, BookingStatus]], *, now: datetime
) -> tuple[int, int]:
    """(no-shows, arrivals due) among ``recent`` bookings (slot start and status as they
    are at ``now``): those whose slot started in the trailing window ``[now -
    window_days, now)`` and that were checked in or became no-shows (cancelled ones and
    those not settled yet say nothing about showing up)."""
    begin = window_start(rule, now)
    due = no_shows = 0
    for slot_start, status in recent:
        if begin <= slot_start < now and status in (
            BookingStatus.CHECKED_IN,
            BookingStatus.NO_SHOW,
        ):
            due += 1
            no_shows += status is BookingStatus.NO_SHOW
    return no_shows, due


def limit_for(rule: NoShowRule, *, no_shows: int, due: int) -> HorizonLimit | None:
    """The limit for a carrier with ``no_shows`` of ``due`` settled bookings in the
    window, or None: fewer than ``min_bookings``, or a rate not above the rule's."""
    if due < rule.min_bookings or no_shows / due <= rule.max_no_show_rate:
        return None
    return HorizonLimit(rule, no_shows, due)


def horizon_limit(
    rule: NoShowRule, recent: Iterable[tuple[datetime, BookingStatus]], *, now: datetime
) -> HorizonLimit | None:
    """The limit for a carrier whose bookings at the hub are ``recent``, or None."""
    no_shows, due = settled_in_window(rule, recent, now=now)
    return limit_for(rule, no_shows=no_shows, due=due)


def may_limit(hub: HubConfig | None, slot: datetime, now: datetime) -> bool:
    """Could the hub's rule refuse this slot at all? (Only then is the carrier's record
    read: most requests are well within any limited horizon.)"""
    rule = hub.no_show_rule if hub is not None else None
    return rule is not None and slot > now + timedelta(days=rule.limited_horizon_days)


def beyond_limit(
    hub: HubConfig, limit: HorizonLimit, carrier_id: str, slot: datetime, now: datetime
) -> str | None:
    """The refusal's message when ``slot`` is beyond the carrier's limited horizon."""
    rule = limit.rule
    until = now + timedelta(days=rule.limited_horizon_days)
    if slot <= until:
        return None
    return (
        f"carrier {carrier_id} missed {limit.no_shows} of its last {limit.arrivals_due} "
        f"bookings at hub {hub.id} in the last {rule.window_days} days: a no-show rate of "
        f"{limit.rate:.1%}, above the hub's limit of {rule.max_no_show_rate:.1%}; it may book "
        f"at most {rule.limited_horizon_days} days ahead (until {until.isoformat()}), not "
        f"{slot.isoformat()}"
    )
