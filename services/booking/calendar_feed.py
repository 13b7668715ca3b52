"""Calendar feeds (RFC 5545) of bookings: a carrier's own, or a hub's for its operators,
at ``GET /v1/calendars/{token}.ics``, for calendar apps that subscribe to a URL and send
no API key.

The token in the URL is the credential, scoped like an API key: a carrier's token shows
that carrier's bookings only, an operator's token that hub's. Tokens are created and
revoked through the API with an API key (``POST /v1/calendar-tokens``, ``DELETE
/v1/calendar-tokens/{id}``); only their SHA-256 is stored (a token is 256 random bits, so
a plain hash is as good as a slow one). An unknown and a revoked token get the same 404,
so the feed tells nobody which tokens exist.

Each booking is one VEVENT whose UID is derived from the booking id (stable across moves
and cancellations); SEQUENCE counts its revisions (moves, and the cancellation), and a
cancelled booking stays in the feed with STATUS:CANCELLED so a subscribed calendar
removes it. Rejected requests never held a slot and are left out.
"""

import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from icalendar import Calendar, Event
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from contracts.common import Identifier
from contracts.hubs import MAX_BOOKING_HORIZON_DAYS
from services.booking import store
from services.booking.domain import BookingStatus
from services.booking.store import StoredBooking, calendar_tokens
from services.runtime.auth import Principal, Role, forbid
from services.runtime.uow import UnitsOfWork

PRODID = "-//microhub//bookings//EN"
PAST = timedelta(days=31)  # how far back a feed reaches (a month of history)
FEED_LIMIT = 5000
NOT_FOUND = "no calendar at this address"  # unknown and revoked alike


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sequence(booking: StoredBooking) -> int:
    """RFC 5545 SEQUENCE: the booking's revisions after its confirmation."""
    return booking.moves + (1 if booking.status is BookingStatus.CANCELLED else 0)


def feed(name: str, bookings: Iterable[StoredBooking], *, now: datetime) -> bytes:
    """The iCalendar document of ``bookings`` (rejected ones left out)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for booking in bookings:
        if booking.status is BookingStatus.REJECTED:
            continue
        event = Event()
        event.add("uid", f"{booking.id}@microhub")
        event.add("dtstamp", now)
        event.add("last-modified", booking.updated_at)
        event.add("dtstart", booking.slot_start)
        event.add("dtend", booking.slot_end)
        event.add(
            "summary", f"{booking.carrier_id} {booking.carrier_reference} at {booking.hub_id}"
        )
        event.add(
            "status",
            "CANCELLED" if booking.status is BookingStatus.CANCELLED else "CONFIRMED",
        )
        event.add("sequence", sequence(booking))
        event.add(
            "description",
            f"booking {booking.id}: {booking.status.value}; "
            f"{booking.volume_l / 1000:.3f} m³ at hub {booking.hub_id}",
        )
        event.add("x-microhub-status", booking.status.value)
        calendar.add_component(event)
    return calendar.to_ical()


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, max_length=200)
    carrier_id: Identifier | None = Field(default=None, description="admins: a carrier's feed")
    hub_id: Identifier | None = Field(default=None, description="admins: a hub's feed")


class TokenView(BaseModel):
    id: str
    role: str
    scope: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None = None


class CreatedToken(TokenView):
    token: str = Field(description="shown once: the feed's credential")
    url: str = Field(description="the feed's path: /v1/calendars/{token}.ics")


def _scope_of(caller: Principal, body: TokenBody) -> tuple[str, str]:
    """(role, scope) of the feed a caller may create."""
    if caller.role is Role.CARRIER and caller.scope and body.hub_id is None:
        if body.carrier_id not in (None, caller.scope):
            raise forbid(f"this key reads carrier {caller.scope}'s bookings, not {body.carrier_id}")
        return Role.CARRIER.value, caller.scope
    if caller.role is Role.OPERATOR and caller.scope and body.carrier_id is None:
        if body.hub_id not in (None, caller.scope):
            raise forbid(f"this key operates hub {caller.scope}, not {body.hub_id}")
        return Role.OPERATOR.value, caller.scope
    if caller.is_admin():
        if (body.carrier_id is None) == (body.hub_id is None):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "an admin names exactly one of carrier_id or hub_id",
            )
        if body.carrier_id is not None:
            return Role.CARRIER.value, body.carrier_id
        assert body.hub_id is not None
        return Role.OPERATOR.value, body.hub_id
    raise forbid("calendar feeds are for carriers and hub operators")


def _may_manage(caller: Principal, row: Any) -> bool:
    if caller.is_admin():
        return True
    return caller.role.value == row.role and caller.scope == row.scope


def router(*, units: UnitsOfWork, principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    api = APIRouter()
    Caller = Annotated[Principal, Depends(principal)]
    sessions = units.sessions

    @api.post(
        "/v1/calendar-tokens",
        status_code=status.HTTP_201_CREATED,
        response_model=CreatedToken,
        tags=["calendars"],
    )
    async def create_token(body: TokenBody, caller: Caller) -> CreatedToken:
        """A calendar feed token: a carrier key's shows its bookings, an operator key's its
        hub's. The token is returned once; keep it like an API key."""
        role, scope = _scope_of(caller, body)
        token = secrets.token_urlsafe(32)
        row = {
            "id": str(uuid.uuid4()),
            "token_hash": token_hash(token),
            "role": role,
            "scope": scope,
            "label": body.label,
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        async with units() as uow:
            await uow.session.execute(calendar_tokens.insert(), row)
        return CreatedToken(
            **{k: v for k, v in row.items() if k != "token_hash"},
            token=token,
            url=f"/v1/calendars/{token}.ics",
        )

    @api.get("/v1/calendar-tokens", response_model=list[TokenView], tags=["calendars"])
    async def list_tokens(caller: Caller) -> list[TokenView]:
        """The caller's feed tokens (never the tokens themselves)."""
        query = select(calendar_tokens).order_by(calendar_tokens.c.created_at)
        if not caller.is_admin():
            query = query.where(
                calendar_tokens.c.role == caller.role.value,
                calendar_tokens.c.scope == (caller.scope or ""),
            )
        async with sessions() as session:
            rows = (await session.execute(query)).all()
        return [TokenView.model_validate(r._mapping, from_attributes=False) for r in rows]

    @api.delete(
        "/v1/calendar-tokens/{token_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        tags=["calendars"],
    )
    async def revoke_token(token_id: str, caller: Caller) -> Response:
        """Revoke a feed token: its URL answers 404 from now on (revoking again: 204)."""
        async with units() as uow:
            row = (
                await uow.session.execute(
                    select(calendar_tokens).where(calendar_tokens.c.id == token_id)
                )
            ).first()
            if row is None or not _may_manage(caller, row):
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"no calendar token {token_id} visible to this key"
                )
            if row.revoked_at is None:
                await uow.session.execute(
                    update(calendar_tokens)
                    .where(calendar_tokens.c.id == token_id)
                    .values(revoked_at=datetime.now(UTC))
                )
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @api.get(
        "/v1/calendars/{token}.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}}, 404: {"description": NOT_FOUND}},
        tags=["calendars"],
    )
    async def calendar(
        token: str,
        day: Annotated[
            date | None,
            Query(
                alias="date",
                description="one day only: the hub's local day (a hub's feed) or UTC's",
            ),
        ] = None,
    ) -> Response:
        """The feed of the token's carrier or hub: its bookings from a month back to the
        end of the booking horizon (or of ``date``). No API key: the token is the key."""
        if len(token) > 100:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
        now = datetime.now(UTC)
        async with sessions() as session:
            row = (
                await session.execute(
                    select(calendar_tokens.c.role, calendar_tokens.c.scope).where(
                        calendar_tokens.c.token_hash == token_hash(token),
                        calendar_tokens.c.revoked_at.is_(None),
                    )
                )
            ).first()
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
            if day is not None:
                hub = await store.get_hub(session, row.scope) if row.role == "operator" else None
                zone = hub.zone if hub is not None else UTC
                start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
                end = (start.astimezone(zone) + timedelta(days=1)).replace(hour=0).astimezone(UTC)
            else:
                start, end = now - PAST, now + timedelta(days=MAX_BOOKING_HORIZON_DAYS + 1)
            found = await store.list_bookings(
                session,
                carrier_id=row.scope if row.role == Role.CARRIER.value else None,
                hub_ids=[row.scope] if row.role == Role.OPERATOR.value else None,
                limit=FEED_LIMIT,
                slot_from=start,
                slot_before=end,
            )
        name = f"microhub: {'carrier' if row.role == Role.CARRIER.value else 'hub'} {row.scope}"
        return Response(
            feed(name, found, now=now),
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300"},
        )

    return api
