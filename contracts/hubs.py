"""A micro-hub as it is published: what the hub catalogue (YAML) and the admin API
(`PUT /v1/admin/hubs/{hub}`) accept, and what `GET /v1/hubs` answers a carrier. The
booking service decides with it; a carrier (and the simulation) plans with it.
"""

from __future__ import annotations

import functools
import itertools
import math
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.common import GeoPoint, Identifier

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class City(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    name: str = Field(min_length=1, max_length=100)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    timezone: str = Field(description="IANA time zone, e.g. Europe/Berlin")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class OpeningInterval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    opens: time
    closes: time

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        # "07:00-19:00" is how people write opening hours in YAML
        if isinstance(value, str):
            try:
                opens, closes = value.split("-")
            except ValueError as exc:
                raise ValueError(f"opening hours {value!r}: expected 'HH:MM-HH:MM'") from exc
            return {"opens": opens.strip(), "closes": closes.strip()}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> OpeningInterval:
        if self.closes <= self.opens:
            raise ValueError(f"closes ({self.closes}) must be after opens ({self.opens})")
        return self


class NoShowRule(BaseModel):
    """A hub's optional rule for carriers who often do not come (docs/scorecards.md): a
    carrier whose no-show rate at this hub over the trailing ``window_days`` is above
    ``max_no_show_rate`` (with at least ``min_bookings`` settled bookings in the window)
    may book only ``limited_horizon_days`` ahead instead of the hub's horizon."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_no_show_rate: float = Field(
        gt=0, lt=1, allow_inf_nan=False, description="Above this rate (0..1) the limit applies."
    )
    window_days: int = Field(default=30, ge=1, le=366, description="The trailing window.")
    min_bookings: int = Field(
        default=5, ge=1, le=10_000, description="Fewer settled bookings in the window: no limit."
    )
    limited_horizon_days: int = Field(
        ge=0, le=366, description="How far ahead such a carrier may still book (0: not at all)."
    )


# No hub takes bookings further ahead than this (a slot beyond it is beyond every hub's).
MAX_BOOKING_HORIZON_DAYS = 366


class HubConfig(BaseModel):
    """A micro-hub as the booking service knows it (YAML catalogue / admin API)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    city: City
    location: GeoPoint
    opening_hours: dict[str, list[OpeningInterval]] = Field(
        description="Per weekday (mon…sun); a missing or empty day is closed."
    )
    closed_dates: list[date] = Field(default_factory=list)
    slot_minutes: int = Field(ge=5, le=24 * 60)
    docks_per_slot: int = Field(ge=1, le=1000)
    volume_per_slot_m3: float = Field(gt=0, le=10_000, allow_inf_nan=False)
    booking_horizon_days: int = Field(ge=1, le=MAX_BOOKING_HORIZON_DAYS)
    cancellation_cutoff_minutes: int = Field(ge=0, le=7 * 24 * 60)
    check_in_early_minutes: int = Field(
        default=120, ge=0, le=24 * 60, description="How early before its slot a truck may check in."
    )
    waitlist_offer_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="How long (event time) a freed slot is held for a waiting request "
        "before it goes to the next in line.",
    )
    no_show_rule: NoShowRule | None = Field(
        default=None,
        description="Optional: a shorter horizon for carriers above a no-show rate "
        "(docs/scorecards.md).",
    )

    @field_validator("opening_hours")
    @classmethod
    def _weekdays(cls, value: dict[str, list[OpeningInterval]]) -> dict[str, list[OpeningInterval]]:
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        for day, intervals in value.items():
            ordered = sorted(intervals, key=lambda i: i.opens)
            for earlier, later in itertools.pairwise(ordered):
                if later.opens < earlier.closes:
                    raise ValueError(f"{day}: opening intervals overlap")
        return {day: sorted(v, key=lambda i: i.opens) for day, v in value.items()}

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.city.timezone)

    # read several times for every request decided: a cached figure per value (~0.1 µs)
    # rather than a new one per read (0.5-0.8 µs); a model_copy with other values still
    # gets its own, as nothing is kept on the instance
    @property
    def volume_per_slot_l(self) -> int:
        return _litres_of_slot(self.volume_per_slot_m3)

    @property
    def slot_length(self) -> timedelta:
        return _minutes(self.slot_minutes)


@functools.lru_cache(maxsize=256)
def _minutes(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


@functools.lru_cache(maxsize=256)
def _litres_of_slot(volume_m3: float) -> int:
    return litres(volume_m3)


def litres(volume_m3: float) -> int:
    """Capacity is counted in whole litres so that sums never drift; a consignment's
    volume is rounded up (it cannot take less room than it declares)."""
    return math.ceil(round(volume_m3 * 1000, 6))
