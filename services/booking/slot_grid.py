"""A hub's slot grid: where its slots are on the calendar (its opening hours cut into
slots of the hub's length, in its time zone, less its closed dates and the operator's
closures), and why a time is not one of them.

Apart from domain.py because the grid is read on its own, by code that needs none of the
booking rules: the hubs API's published grid (``GET /v1/hubs/{hub}/slots``, what
carriers and the simulation plan with), the waiting list's offers, the benchmarks. The
rules build on it (``domain.check_slot``, ``domain.next_fitting_slots``). Pure, like
domain.py: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.booking import RejectionReason
from contracts.hubs import WEEKDAYS, HubConfig


def _local_slots_on(hub: HubConfig, day: date) -> Iterator[datetime]:
    if day in hub.closed_dates:
        return
    for interval in hub.opening_hours.get(WEEKDAYS[day.weekday()], []):
        start = datetime.combine(day, interval.opens, tzinfo=hub.zone)
        close = datetime.combine(day, interval.closes, tzinfo=hub.zone)
        while start + hub.slot_length <= close:
            yield start
            start += hub.slot_length


def slots_on(hub: HubConfig, day: date) -> list[datetime]:
    """Slot starts (UTC) on a local calendar day of the hub (not those it closed)."""
    slots = [s.astimezone(UTC) for s in _local_slots_on(hub, day)]
    return [s for s in slots if closure_of(hub, s) is None]


def closure_of(hub: HubConfig, slot_start: datetime) -> Any | None:
    """The operator's closure (closures.py lays a hub's closures over the catalogue's
    hub for a batch's decisions) that the slot starting at ``slot_start`` overlaps."""
    # a ClosedHub's field, read from the instance: getattr on a plain HubConfig goes
    # through pydantic's __getattr__ and an AttributeError, on every request decided
    for closure in hub.__dict__.get("closures", ()):
        if slot_start < closure.ends_at and slot_start + hub.slot_length > closure.starts_at:
            return closure
    return None


def slots_between(hub: HubConfig, start: datetime, end: datetime) -> Iterator[datetime]:
    """Slot starts (UTC) with start <= slot < end, in order."""
    day = start.astimezone(hub.zone).date()
    last = end.astimezone(hub.zone).date()
    while day <= last:
        for slot in slots_on(hub, day):
            if start <= slot < end:
                yield slot
        day += timedelta(days=1)


# (hub by identity, slot start) -> (the hub, its answer): a batch asks of the same few
# slots again and again (2.6 µs an answer, ~0.2 kept). Hubs are frozen, and a hub that
# changes or is closed is a new object (ledger.HubCatalogue, closures.py); the object is
# kept with the answer so that its id is not reused while the answer is.
_ANSWERS: dict[tuple[int, datetime], tuple[HubConfig, tuple[RejectionReason, str] | None]] = {}
_ANSWERS_KEPT = 4096


def grid_problem(hub: HubConfig, slot_start: datetime) -> tuple[RejectionReason, str] | None:
    """Is ``slot_start`` a slot of this hub? None when it is; else reason and message."""
    key = (id(hub), slot_start)
    known = _ANSWERS.get(key)
    if known is not None and known[0] is hub:
        return known[1]
    answer = _grid_problem(hub, slot_start)
    if len(_ANSWERS) >= _ANSWERS_KEPT:
        _ANSWERS.clear()
    _ANSWERS[key] = (hub, answer)
    return answer


def _grid_problem(hub: HubConfig, slot_start: datetime) -> tuple[RejectionReason, str] | None:
    closure = closure_of(hub, slot_start)
    if closure is not None:
        return (
            RejectionReason.HUB_CLOSED,
            f"hub {hub.id} is closed from {closure.starts_at.isoformat()} to "
            f"{closure.ends_at.isoformat()}: {closure.reason}",
        )
    zone = hub.zone  # a property that builds (looks up) the ZoneInfo: read once
    local = slot_start.astimezone(zone)
    day = local.date()
    if day in hub.closed_dates:
        return RejectionReason.HUB_CLOSED, f"hub {hub.id} is closed on {day.isoformat()}"
    intervals = hub.opening_hours.get(WEEKDAYS[day.weekday()], [])
    if not intervals:
        return RejectionReason.HUB_CLOSED, f"hub {hub.id} is closed on {local.strftime('%A')}s"
    for interval in intervals:
        opens = datetime.combine(day, interval.opens, tzinfo=zone)
        closes = datetime.combine(day, interval.closes, tzinfo=zone)
        if opens <= local < closes:
            offset = (local - opens).total_seconds()
            if offset % (hub.slot_minutes * 60) != 0:
                return (
                    RejectionReason.NOT_ON_GRID,
                    f"slots at hub {hub.id} start every {hub.slot_minutes} minutes from "
                    f"{interval.opens.strftime('%H:%M')} ({hub.city.timezone}); "
                    f"{local.strftime('%H:%M:%S')} is not one of them",
                )
            if local + hub.slot_length > closes:
                break
            return None
    hours = ", ".join(f"{i.opens:%H:%M}-{i.closes:%H:%M}" for i in intervals)
    return (
        RejectionReason.OUTSIDE_OPENING_HOURS,
        f"{local.strftime('%H:%M')} local time is outside the opening hours of hub {hub.id} "
        f"on {local.strftime('%A')} ({hours}, {hub.city.timezone})",
    )
