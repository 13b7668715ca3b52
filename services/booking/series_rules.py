"""Standing bookings' rules (pure: no I/O, no clock): what a series' RRULE may say, and
which of its occurrences fall in a stretch of time.

An occurrence is the rule's date at ``dtstart``'s wall time in the hub's time zone: a
series at 07:00 in Berlin books 07:00 CET in winter and 07:00 CEST in summer (06:00 and
05:00 UTC). A wall time that does not exist on a day (the hour skipped in spring) is read
as zoneinfo reads it (``fold=0``: with the offset before the change, so 02:30 becomes
03:30 summer time); one that exists twice (the hour repeated in autumn) is its first.
The slot grid then decides the occurrence like any request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from contracts.booking.series import SeriesRejectionReason

# RFC 5545 rule parts a series may use; the time of day is dtstart's (no BYHOUR,
# BYMINUTE, BYSECOND), so a series has at most one occurrence a day
ALLOWED_PARTS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS",
     "BYWEEKNO", "BYYEARDAY", "WKST"}
)  # fmt: skip
ALLOWED_FREQ = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
MAX_INTERVAL = 366
# a rule must have an occurrence this soon after dtstart: one that never occurs (30
# February) would otherwise be iterated to the year 9999
FIRST_WITHIN = timedelta(days=4 * 366)


@dataclass(frozen=True)
class Problem:
    reason: SeriesRejectionReason
    message: str


@dataclass(frozen=True)
class Occurrence:
    local_start: datetime  # naive: the hub's wall time
    slot_start: datetime  # aware, UTC

    def reference(self, series_reference: str) -> str:
        """The occurrence's own carrier reference (its booking id is derived from it)."""
        return f"{series_reference}:{self.local_start:%Y%m%dT%H%M}"


def parse(rule: str, dtstart: datetime) -> rrule | Problem:
    """The rule, or why it is refused. ``dtstart``: naive, the hub's wall time."""
    invalid = SeriesRejectionReason.INVALID_RRULE
    if dtstart.tzinfo is not None:
        return Problem(invalid, "dtstart is the hub's local wall time, without an offset")
    parts: dict[str, str] = {}
    for part in rule.split(";"):
        name, sep, value = part.partition("=")
        if not sep or not name or not value:
            return Problem(invalid, f"{part!r} is not NAME=VALUE (RFC 5545 RRULE value)")
        if name not in ALLOWED_PARTS:
            return Problem(
                invalid,
                f"rule part {name!r} is not accepted (accepted: {', '.join(sorted(ALLOWED_PARTS))};"
                " the time of day is dtstart's)",
            )
        if name in parts:
            return Problem(invalid, f"rule part {name} is given twice")
        parts[name] = value
    if "FREQ" not in parts:
        return Problem(invalid, "FREQ is required")
    if parts["FREQ"] not in ALLOWED_FREQ:
        return Problem(
            SeriesRejectionReason.RRULE_TOO_FREQUENT
            if parts["FREQ"] in {"HOURLY", "MINUTELY", "SECONDLY"}
            else invalid,
            f"FREQ={parts['FREQ']} is not accepted: a series repeats DAILY, WEEKLY, MONTHLY "
            "or YEARLY",
        )
    if "COUNT" in parts and "UNTIL" in parts:
        return Problem(invalid, "COUNT and UNTIL exclude each other (RFC 5545)")
    if "INTERVAL" in parts and not (
        parts["INTERVAL"].isdigit() and 1 <= int(parts["INTERVAL"]) <= MAX_INTERVAL
    ):
        return Problem(invalid, f"INTERVAL must be a whole number from 1 to {MAX_INTERVAL}")
    if "COUNT" in parts and not (parts["COUNT"].isdigit() and int(parts["COUNT"]) >= 1):
        return Problem(invalid, "COUNT must be a whole number of at least 1")
    if "UNTIL" in parts and parts["UNTIL"].endswith("Z"):
        return Problem(invalid, "UNTIL is a local date or date-time, without 'Z' (like dtstart)")
    try:
        parsed = rrulestr(rule, dtstart=dtstart)
    except (ValueError, TypeError, OverflowError) as exc:
        return Problem(invalid, f"the rule cannot be read: {exc}")
    if not isinstance(parsed, rrule):  # pragma: no cover - one RRULE value is one rrule
        return Problem(invalid, "one RRULE value is expected")
    try:
        # existence within a bound (COUNT >= 1 never removes the first occurrence)
        until: datetime | None = getattr(parsed, "_until", None)
        bound = dtstart + FIRST_WITHIN
        bounded = parsed.replace(count=None, until=min(until, bound) if until else bound)
        first = bounded.after(dtstart, inc=True)
    except (ValueError, OverflowError) as exc:
        return Problem(invalid, f"the rule cannot be expanded: {exc}")
    if first is None:
        return Problem(
            SeriesRejectionReason.NO_OCCURRENCES,
            f"the rule has no occurrence from {dtstart.isoformat()} within "
            f"{FIRST_WITHIN.days} days",
        )
    return parsed


def occurrences(rule: rrule, zone: ZoneInfo, after: datetime, until: datetime) -> list[Occurrence]:
    """Occurrences with ``after < slot_start <= until`` (aware instants), in order."""
    # the local bounds are widened by a day: a UTC instant and a wall time differ by the
    # zone's offset, which changes at DST; the exact test is on the UTC instant
    low = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    high = until.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    found = []
    for local in rule.between(low, high, inc=True):
        slot = local.replace(tzinfo=zone).astimezone(UTC)
        if after < slot <= until:
            found.append(Occurrence(local, slot))
    return found


def next_after(rule: rrule, zone: ZoneInfo, after: datetime) -> Occurrence | None:
    """The first occurrence with ``slot_start > after`` (an aware instant), or None when
    the rule has ended (COUNT, UNTIL). A series has at most one occurrence a day, so it is
    among the first three after the local day before ``after``."""
    low = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    for local in rule.xafter(low, count=3):
        slot = local.replace(tzinfo=zone).astimezone(UTC)
        if slot > after:
            return Occurrence(local, slot)
    return None
