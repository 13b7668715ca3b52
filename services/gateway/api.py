"""HTTP routes of the gateway: the carrier registry (admins), how a carrier connects, and
its webhook subscriptions with their delivery log (the carrier itself, or an admin).

A carrier sees and changes only its own subscriptions; another carrier's are answered
with 404, as if they did not exist.
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from contracts.catalog import types_on
from contracts.topics import CARRIER_EVENTS
from services.gateway import registry as carriers_registry
from services.gateway import store
from services.gateway.webhooks import TargetRefused, check_address, check_url, new_secret
from services.runtime.auth import Principal, Role
from services.runtime.carriers import Carrier, CarriersError, check_carrier_id
from services.runtime.uow import UnitsOfWork

w = store.webhook_subscriptions.c
d = store.webhook_deliveries.c


class CarrierBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    active: bool = True


class SubscriptionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="https://… where the events are POSTed")
    event_types: list[str] | None = Field(
        default=None, description="Only these CloudEvents types (default: every one)."
    )


class Subscription(BaseModel):
    id: str
    carrier_id: str
    url: str
    event_types: list[str] | None
    active: bool
    created_at: datetime
    secret: str | None = Field(
        default=None, description="Only in the answer that creates or rotates it."
    )
    previous_secret_valid_until: datetime | None = None


class DeliveryView(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def router(
    *,
    units: UnitsOfWork,
    principal: Callable[..., Any],
    prefix: str,
    allow_private_targets: bool,
    secret_overlap: timedelta,
    changed: Callable[[], None] = lambda: None,
) -> APIRouter:
    """``changed``: called after the registry or the subscriptions changed (forget caches)."""
    api = APIRouter(prefix="/v1")
    Caller = Annotated[Principal, Depends(principal)]
    sessions = units.sessions

    def admin(caller: Principal) -> None:
        if not caller.is_admin():
            raise HTTPException(status.HTTP_403_FORBIDDEN, "managing carriers needs an admin key")

    def acting_for(caller: Principal, carrier_id: str | None) -> str:
        """The carrier a webhook request is for: a carrier key's own; an admin names it."""
        if caller.role is Role.CARRIER:
            assert caller.scope is not None
            if carrier_id not in (None, caller.scope):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, f"this key is carrier {caller.scope}'s"
                )
            return caller.scope
        if caller.is_admin() and carrier_id:
            return carrier_id
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "webhooks are a carrier's (carrier keys; admins name the carrier: ?carrier_id=)",
        )

    # --------------------------------------------------------------- registry ------

    @api.get("/admin/carriers", tags=["admin"])
    async def list_carriers(caller: Caller) -> list[dict[str, Any]]:
        admin(caller)
        async with sessions() as session:
            found = await carriers_registry.all_carriers(session)
        return [carriers_registry.describe(c, prefix) for c in found]

    @api.put("/admin/carriers/{carrier_id}", tags=["admin"])
    async def put_carrier(carrier_id: str, body: CarrierBody, caller: Caller) -> dict[str, Any]:
        """Add or change a carrier. Its Kafka user, topics and ACLs follow with `microhub
        carriers apply` (a super user's job; the API's principal may not)."""
        admin(caller)
        try:
            carrier = Carrier(check_carrier_id(carrier_id), body.name, body.active)
        except CarriersError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        async with units() as uow:
            await carriers_registry.upsert_carriers(uow.session, [carrier], origin="api")
        changed()
        return carriers_registry.describe(carrier, prefix)

    @api.delete(
        "/admin/carriers/{carrier_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["admin"]
    )
    async def deactivate_carrier(carrier_id: str, caller: Caller) -> Response:
        """Deactivate: its commands are refused and it is told nothing more; its topics
        and data stay. `microhub carriers apply --delete-extra` then removes its ACLs."""
        admin(caller)
        async with units() as uow:
            found = await carriers_registry.get_carrier(uow.session, carrier_id)
            if found is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no carrier {carrier_id!r}")
            await carriers_registry.upsert_carriers(
                uow.session, [Carrier(found.id, found.name, False)], origin="api"
            )
        changed()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @api.get("/carriers/{carrier_id}/connection", tags=["carriers"])
    async def connection(carrier_id: str, caller: Caller) -> dict[str, Any]:
        """How this carrier connects: its topics, SASL user and consumer group prefix (the
        password comes from the platform operator, out of band)."""
        if not caller.may_act_as_carrier(carrier_id):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this key is not carrier {carrier_id}'s"
            )
        async with sessions() as session:
            found = await carriers_registry.get_carrier(session, carrier_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no carrier {carrier_id!r}")
        return carriers_registry.describe(found, prefix)

    # --------------------------------------------------------------- webhooks ------

    async def owned(subscription_id: str, carrier_id: str) -> Any:
        async with sessions() as session:
            row = (
                await session.execute(
                    select(store.webhook_subscriptions).where(
                        w.id == subscription_id, w.carrier_id == carrier_id
                    )
                )
            ).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription {subscription_id}")
        return row

    def view(row: Any, secret: str | None = None) -> Subscription:
        now = datetime.now(UTC)
        until = row.previous_until if row.previous_until and row.previous_until > now else None
        return Subscription(
            id=row.id,
            carrier_id=row.carrier_id,
            url=row.url,
            event_types=row.event_types,
            active=bool(row.active),
            created_at=row.created_at,
            secret=secret,
            previous_secret_valid_until=until,
        )

    @api.post(
        "/webhooks",
        status_code=status.HTTP_201_CREATED,
        response_model=Subscription,
        tags=["webhooks"],
    )
    async def subscribe(
        body: SubscriptionBody, caller: Caller, carrier_id: str | None = None
    ) -> Subscription:
        """Subscribe a URL to the events of the carrier's own topic. The answer holds the
        signing secret, once: keep it (rotate it with POST …/secret)."""
        carrier = acting_for(caller, carrier_id)
        try:
            url = check_url(body.url, allow_private=allow_private_targets)
            await check_address(url, allow_private=allow_private_targets)
        except TargetRefused as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        known = types_on(CARRIER_EVENTS)
        unknown = sorted(set(body.event_types or ()) - known)
        if unknown:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"no such event types on a carrier's topic: {', '.join(unknown)}",
            )
        now = datetime.now(UTC)
        secret = new_secret()
        row = {
            "id": str(uuid.uuid4()),
            "carrier_id": carrier,
            "url": url,
            "secret": secret,
            "event_types": sorted(body.event_types) if body.event_types else None,
            "active": 1,
            "created_at": now,
            "updated_at": now,
        }
        async with units() as uow:
            active = await carriers_registry.get_carrier(uow.session, carrier)
            if active is None or not active.active:
                raise HTTPException(
                    status.HTTP_409_CONFLICT, f"carrier {carrier} is not active in the registry"
                )
            await uow.session.execute(store.webhook_subscriptions.insert().values(**row))
        changed()
        return Subscription(
            id=row["id"],
            carrier_id=carrier,
            url=url,
            event_types=row["event_types"],
            active=True,
            created_at=now,
            secret=secret,
        )

    @api.get("/webhooks", response_model=list[Subscription], tags=["webhooks"])
    async def subscriptions(caller: Caller, carrier_id: str | None = None) -> list[Subscription]:
        carrier = acting_for(caller, carrier_id)
        async with sessions() as session:
            rows = await session.execute(
                select(store.webhook_subscriptions)
                .where(w.carrier_id == carrier)
                .order_by(w.created_at)
            )
            return [view(row) for row in rows]

    @api.post("/webhooks/{subscription_id}/secret", response_model=Subscription, tags=["webhooks"])
    async def rotate_secret(
        subscription_id: str, caller: Caller, carrier_id: str | None = None
    ) -> Subscription:
        """A new secret; deliveries are signed with it and with the previous one for a
        while (``previous_secret_valid_until``), so the receiver switches without a gap."""
        carrier = acting_for(caller, carrier_id)
        row = await owned(subscription_id, carrier)
        secret = new_secret()
        now = datetime.now(UTC)
        async with units() as uow:
            await uow.session.execute(
                update(store.webhook_subscriptions)
                .where(w.id == subscription_id)
                .values(
                    secret=secret,
                    previous_secret=row.secret,
                    previous_until=now + secret_overlap,
                    updated_at=now,
                )
            )
        return view(await owned(subscription_id, carrier), secret)

    @api.delete(
        "/webhooks/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["webhooks"]
    )
    async def unsubscribe(
        subscription_id: str, caller: Caller, carrier_id: str | None = None
    ) -> Response:
        carrier = acting_for(caller, carrier_id)
        await owned(subscription_id, carrier)
        async with units() as uow:
            await uow.session.execute(
                update(store.webhook_subscriptions)
                .where(w.id == subscription_id)
                .values(active=0, updated_at=datetime.now(UTC))
            )
        changed()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @api.get(
        "/webhooks/{subscription_id}/deliveries",
        response_model=list[DeliveryView],
        tags=["webhooks"],
    )
    async def deliveries(
        subscription_id: str,
        caller: Caller,
        carrier_id: str | None = None,
        delivery_status: Annotated[
            Literal["pending", "delivered", "failed"] | None, Query(alias="status")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(description="ids below this (paging)")] = None,
    ) -> list[DeliveryView]:
        """The delivery log, newest first: every attempt's outcome."""
        carrier = acting_for(caller, carrier_id)
        await owned(subscription_id, carrier)
        query = select(store.webhook_deliveries).where(d.subscription_id == subscription_id)
        if delivery_status:
            query = query.where(d.status == delivery_status)
        if before is not None:
            query = query.where(d.id < before)
        async with sessions() as session:
            rows = await session.execute(query.order_by(d.id.desc()).limit(limit))
            return [
                DeliveryView(
                    id=r.id,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    status=r.status,
                    attempts=r.attempts,
                    next_attempt_at=r.next_attempt_at if r.status == "pending" else None,
                    last_status=r.last_status,
                    last_error=r.last_error,
                    created_at=r.created_at,
                    finished_at=r.finished_at,
                )
                for r in rows
            ]

    @api.post(
        "/webhooks/{subscription_id}/deliveries/{delivery_id}/retry",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["webhooks"],
    )
    async def retry(
        subscription_id: str, delivery_id: int, caller: Caller, carrier_id: str | None = None
    ) -> dict[str, Any]:
        """Send a failed delivery again (its schedule starts over)."""
        carrier = acting_for(caller, carrier_id)
        await owned(subscription_id, carrier)
        async with units() as uow:
            result = await uow.session.execute(
                update(store.webhook_deliveries)
                .where(
                    d.id == delivery_id,
                    d.subscription_id == subscription_id,
                    d.status == "failed",
                    d.payload.is_not(None),
                )
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=datetime.now(UTC),
                    finished_at=None,
                )
                .returning(d.id)
            )
            if result.first() is None:
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    f"delivery {delivery_id} is not a failed delivery of this subscription "
                    "(or its event was purged)",
                )
        changed()
        return {"id": delivery_id, "status": "pending"}

    return api
