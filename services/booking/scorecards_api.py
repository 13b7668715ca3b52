"""``GET /v1/scorecards``: how carriers kept their bookings at a hub in a month.

A hub's operators see every carrier at their hub; a carrier sees its own row only, at
any hub (never another carrier's: a carrier naming another one is refused). The figures
are defined in docs/scorecards.md.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from services.booking import scorecard_store, scorecards, store
from services.runtime.auth import Principal, Role, forbid
from services.runtime.uow import UnitsOfWork

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


class ScorecardRow(BaseModel):
    carrier_id: str
    hub_id: str
    month: str
    bookings: int = Field(description="Bookings (not rejected requests) whose slot starts in it.")
    on_time_check_ins: int
    late_check_ins: int
    no_shows: int
    cancellations: int = Field(description="Cancelled before the hub's cutoff.")
    late_cancellations: int
    pending: int = Field(description="Still confirmed: slot to come, or not yet settled.")
    reschedules: int = Field(description="Moves of these bookings (a booking may move twice).")
    late_reschedules: int
    on_time_rate: float | None = Field(description="on time / checked in; null: none")
    no_show_rate: float | None = Field(description="no-shows / (checked in + no-shows)")
    late_cancellation_rate: float | None = Field(description="late cancellations / bookings")
    late_reschedule_rate: float | None = Field(description="late reschedules / reschedules")


class ScorecardPage(BaseModel):
    hub_id: str
    month: str
    timezone: str = Field(description="The hub's: a booking belongs to its slot's local month.")
    starts: datetime
    ends: datetime
    final: bool = Field(
        description="The month is over and every booking of it settled: the figures no "
        "longer change."
    )
    scorecards: list[ScorecardRow]


def router(*, units: UnitsOfWork, principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    api = APIRouter()
    Caller = Annotated[Principal, Depends(principal)]

    @api.get("/v1/scorecards", response_model=ScorecardPage, tags=["scorecards"])
    async def get_scorecards(
        caller: Caller,
        hub: Annotated[str, Query(min_length=1, max_length=64, description="the hub's id")],
        month: Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM")],
        carrier_id: Annotated[
            str | None, Query(max_length=64, description="one carrier's row only")
        ] = None,
    ) -> ScorecardPage:
        if caller.role is Role.CARRIER:
            if carrier_id not in (None, caller.scope):
                raise forbid(f"this key is carrier {caller.scope}'s: it sees its own scorecard")
            carrier_id = caller.scope
        elif not caller.may_operate_hub(hub):
            if caller.role is Role.OPERATOR:
                raise forbid(f"this key operates hub {caller.scope}, not {hub}")
            raise forbid("scorecards are for a hub's operators and for carriers")
        first = scorecards.parse_month(month)
        async with units.sessions() as session:
            config = await store.get_hub(session, hub)
            if config is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no hub {hub!r}")
            facts = await scorecard_store.month_facts(session, config, first, carrier_id=carrier_id)
        cards = scorecards.scorecards(config, first, facts)
        starts, ends = scorecards.month_bounds(config.zone, first)
        settled = all(card.outcomes[scorecards.Outcome.PENDING] == 0 for card in cards)
        return ScorecardPage(
            hub_id=config.id,
            month=month,
            timezone=config.city.timezone,
            starts=starts,
            ends=ends,
            final=settled and datetime.now(UTC) >= ends,
            scorecards=[ScorecardRow.model_validate(card.figures()) for card in cards],
        )

    return api
