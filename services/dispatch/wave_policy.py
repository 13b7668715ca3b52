"""When a hub's wave leaves (pure: no I/O, no clock): the fill, the hub's departure
times and the latest departure, all on event time. Apart from domain.py so that the fleet
file (fleet.py), which domain.py reads, can build a hub's policy; ``domain`` re-exports
these names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class WavePolicy:
    """When a hub's wave leaves (docs/dispatch.md, "Waves that consolidate")."""

    min_stops: int  # fill: plan as soon as this many new stops wait
    # latest departure: no new stop waits longer than this for its first wave (None: the
    # departures below are the latest departures)
    max_wait: timedelta | None
    departures: tuple[time, ...] = ()  # the hub's local departure times, every day


def last_departure(now: datetime, departures: Sequence[time], timezone: str) -> datetime | None:
    """The latest scheduled departure at or before ``now`` (today's or yesterday's, in
    the hub's local time), or None when the hub has no departures."""
    if not departures:
        return None
    try:
        tz = ZoneInfo(timezone)
    except Exception:
        tz = ZoneInfo("UTC")
    local = now.astimezone(tz)
    candidates = [
        datetime.combine(local.date() - timedelta(days=back), at, tzinfo=tz)
        for back in (0, 1)
        for at in departures
    ]
    return max(c for c in candidates if c <= now)


def wave_due(
    *,
    now: datetime,
    waiting: int,
    fresh: int,
    oldest_fresh_since: datetime | None,
    last_wave_at: datetime | None,
    policy: WavePolicy,
    timezone: str = "UTC",
) -> str | None:
    """Why a wave is due at event time ``now`` (None when it is not).

    ``fresh`` counts the stops queued since the last wave, ``oldest_fresh_since`` when
    the first of them was queued. A wave leaves when

    * ``min_stops`` fresh stops wait (the fill), or
    * a departure time of the hub has come since the last wave (and something waited for
      it), or
    * the oldest fresh stop has waited ``max_wait`` (the latest departure); stops left
      over from a wave (nothing could take them) wait ``max_wait`` from that wave.

    The waiting time counts from the first stop, never from the last wave: after a quiet
    hour the first check-in does not leave alone at once, it waits for company (the fill)
    until its departure.
    """
    if waiting <= 0:
        return None
    if fresh >= policy.min_stops:
        return f"{fresh} new stops waiting (fill {policy.min_stops})"
    departed = last_departure(now, policy.departures, timezone)
    if (
        departed is not None
        and (last_wave_at is None or last_wave_at < departed)
        # something waited for that departure: a leftover, or a new stop queued by then
        and (waiting > fresh or (oldest_fresh_since is not None and oldest_fresh_since <= departed))
    ):
        return f"departure at {departed:%H:%M} local time"
    if policy.max_wait is not None:
        if fresh > 0 and oldest_fresh_since is not None:
            if now >= oldest_fresh_since + policy.max_wait:
                return f"latest departure: the first new stop waited {policy.max_wait}"
        elif last_wave_at is not None and now >= last_wave_at + policy.max_wait:
            return f"stops left over waited {policy.max_wait} since the last wave"
    return None
