"""The gateway's consumers: the ingress (carriers' commands in, the platform's commands out)
and the egress (the platform's events in, each carrier's own out, to its topic and its
webhooks).

Ingress, per command on ``microhub.carriers.<carrier>.commands.v1``:

1. the carrier is the topic's (only its principal may write there), and must be active in
   the registry;
2. the receipt time is the broker's (``LogAppendTime``: the carriers' topics are
   configured so) or, on a topic without it, this process's clock: never the carrier's.
   With ``MICROHUB_MAX_CLOCK_SKEW_SECONDS`` set, a command whose own time is further
   from it is refused (``clock_skew``): the carrier's clock is wrong;
3. a command naming another carrier is refused (``carrier_mismatch``);
4. anything else goes to ``microhub.booking.commands.v1`` as it came, at the receipt
   time, which booking decides with, under an id derived from the carrier, the command's
   source and id and a source naming the carrier (``contracts.carriers.forwarded_id``,
   ``forwarded_source``): two carriers may use the same ids without colliding anywhere.
   A refusal goes to the carrier's own topic.

Every answer a carrier gets (booking's, passed on by the egress, and the ingress's own
refusals) carries the carrier's own command id and source as ``causationid`` and
``causationsource``: the ingress keeps which forwarded id was which carrier command
(``store.forwarded_commands``).

The carrier's event ids are unique only among its own: the inbox knows a command by the
carrier, its source and its id (``identify``: the forwarded id).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from contracts.booking.commands import booking_id_for
from contracts.carriers import (
    FORWARDED_SOURCE_PREFIX,
    CommandRefused,
    RefusalReason,
    forwarded_id,
    forwarded_source,
)
from contracts.dispatch import RoutePlanned
from contracts.envelope import REGISTRY
from contracts.topics import BOOKING_COMMANDS, CARRIER_COMMANDS, CARRIER_EVENTS
from services.gateway import egress, store
from services.gateway.registry import Registry
from services.runtime.consumer import Delivery
from services.runtime.db import insert_ignoring
from services.runtime.uow import Emitted, UnitOfWork

log = logging.getLogger(__name__)

LOG_APPEND_TIME = 1
# the carrier's own id of a command, kept on the envelope while the inbox knows it by
# a scoped one (a CloudEvents extension attribute: lowercase letters and digits)
CARRIER_EVENT_ID = "carriereventid"


class GatewayHandlers:
    def __init__(
        self,
        *,
        prefix: str,
        receipt_time: str,
        max_clock_skew: timedelta,
        registry: Registry,
        subscriptions: Subscriptions,
        emitted_webhooks: Any = None,
    ) -> None:
        self.prefix = prefix
        self.receipt_time = receipt_time
        self.max_clock_skew = max_clock_skew
        self.registry = registry
        self.subscriptions = subscriptions
        self.emitted_webhooks = emitted_webhooks or (lambda: None)
        self._create_time_topics: set[str] = set()
        self.forwarded = 0
        self.refused = 0
        self.resent = 0  # commands sent again, told their answer again
        self.unroutable = 0  # events about a carrier the registry does not know (active)

    # ------------------------------------------------------------------ ingress --------

    def carrier_of(self, delivery: Delivery) -> str:
        carrier = CARRIER_COMMANDS.carrier_of(delivery.topic, self.prefix)
        if carrier is None:  # the consumer subscribes by exactly this pattern
            raise ValueError(f"{delivery.topic} is no carrier's commands topic")
        return carrier

    def identify(self, delivery: Delivery) -> Delivery:
        """The delivery as the inbox should know it: by the topic's carrier, the command's
        source and its id (a carrier cannot collide with another's ids, on purpose or
        not), which is the id it is forwarded under; the carrier's own id stays on the
        envelope."""
        event = delivery.event
        scoped = forwarded_id(self.carrier_of(delivery), event.source, event.id)
        return replace(
            delivery, event=event.model_copy(update={"id": scoped, CARRIER_EVENT_ID: event.id})
        )

    def received_at(self, delivery: Delivery) -> datetime:
        if self.receipt_time == "sender":  # a simulation: the sender is the world's clock
            return delivery.event.time.astimezone(UTC)
        if delivery.timestamp_type == LOG_APPEND_TIME and delivery.timestamp_ms:
            return datetime.fromtimestamp(delivery.timestamp_ms / 1000, UTC)
        if delivery.topic not in self._create_time_topics:
            self._create_time_topics.add(delivery.topic)
            log.warning(
                "%s has no broker timestamps (message.timestamp.type=LogAppendTime): its "
                "commands are received at this process's clock",
                delivery.topic,
            )
        return datetime.now(UTC)

    async def on_command(self, uow: UnitOfWork, delivery: Delivery) -> None:
        carrier = self.carrier_of(delivery)
        command = delivery.event.data
        received = self.received_at(delivery)
        refusal: tuple[RefusalReason, str] | None = None
        if carrier not in await self.registry.active(uow.session):
            refusal = (
                RefusalReason.UNKNOWN_CARRIER,
                f"carrier {carrier} is not active in the registry: nothing is forwarded",
            )
        elif (
            self.max_clock_skew
            and self.receipt_time != "sender"
            and abs(delivery.event.time - received) > self.max_clock_skew
        ):
            refusal = (
                RefusalReason.CLOCK_SKEW,
                f"the command's time {delivery.event.time.isoformat()} is more than "
                f"{self.max_clock_skew} away from its receipt at {received.isoformat()}; "
                "check the sender's clock",
            )
        elif getattr(command, "carrier_id", None) != carrier:
            # a hub operator's command (a closure) names no carrier: never a carrier's
            refusal = (
                RefusalReason.CARRIER_MISMATCH,
                f"a command on carrier {carrier}'s topic names another carrier (or none: "
                "a hub operator's): a carrier sends commands only in its own name",
            )
        command_id = getattr(delivery.event, CARRIER_EVENT_ID, delivery.event.id)
        causation = (command_id, delivery.event.source)
        if refusal is not None:
            self.refused += 1
            reference = getattr(command, "carrier_reference", None) or command.closure_id
            await self.tell(
                uow,
                egress.View(
                    carrier,
                    booking_id_for(carrier, reference),
                    CommandRefused(
                        carrier_id=carrier,
                        command_id=command_id,
                        command_type=delivery.event.type,
                        carrier_reference=reference,
                        hub_id=command.hub_id,
                        reason=refusal[0],
                        message=refusal[1],
                        received_at=received,
                    ),
                ),
                received,
                # an inactive carrier's topic is still there (and its data): it is told too
                known_active=True,
                causation=causation,
            )
            return
        # booking's answer will name the forwarded id: the carrier is told its own
        await uow.session.execute(
            insert_ignoring(uow.session, store.forwarded_commands, "id"),
            [
                {
                    "id": delivery.event.id,
                    "carrier_id": carrier,
                    "command_id": command_id,
                    "command_source": delivery.event.source,
                    "forwarded_at": received,
                }
            ],
        )
        uow.emit(
            command,
            key=command.hub_id,
            time=received,
            event_id=delivery.event.id,
            source=forwarded_source(carrier),
            topic=BOOKING_COMMANDS.name,
        )
        self.forwarded += 1

    # ------------------------------------------------------------------- egress --------

    async def on_booking_event(self, uow: UnitOfWork, delivery: Delivery) -> None:
        event = delivery.event
        # an answer to a command the ingress forwarded names it by the carrier's own id
        # and source; one to a command that did not come through a carrier's topic (or
        # an event that answers none, a no-show) names nothing
        sent = await self._carrier_command(uow, event)
        for view in egress.booking_views(event.data):
            causation = None
            if sent is not None and sent.carrier_id == view.carrier_id:
                causation = (sent.command_id, sent.command_source)
                # kept, to be told again if the carrier sends the command again
                told = [*(sent.answer or ()), _document(view)]
                f = store.forwarded_commands.c
                await uow.session.execute(
                    update(store.forwarded_commands).where(f.id == sent.id).values(answer=told)
                )
            await self.tell(uow, view, event.time, causation=causation)

    async def _carrier_command(self, uow: UnitOfWork, event: Any) -> Any:
        """The forwarded command ``event`` answers (its carrier, the carrier's own id and
        source, what it was told so far), or None."""
        source = getattr(event, "causationsource", None)
        cause = getattr(event, "causationid", None)
        if not cause or not source or not source.startswith(FORWARDED_SOURCE_PREFIX):
            return None
        f = store.forwarded_commands.c
        query = select(f.id, f.carrier_id, f.command_id, f.command_source, f.answer)
        return (await uow.session.execute(query.where(f.id == cause))).first()

    async def on_resend(self, uow: UnitOfWork, delivery: Delivery) -> None:
        """A carrier sent a command again (the same source and id; not a redelivery of its
        record): it is told its answer again, as the README promises. A command refused
        before is looked at again (the carrier may have been activated since); one
        forwarded and not answered yet gets its answer when booking gives it."""
        f = store.forwarded_commands.c
        query = select(f.carrier_id, f.command_id, f.command_source, f.answer)
        sent = (await uow.session.execute(query.where(f.id == delivery.event.id))).first()
        if sent is None:
            await self.on_command(uow, delivery)
            return
        self.resent += 1
        for told in sent.answer or ():
            payload = REGISTRY[told["type"]].model_validate(told["data"])
            view = egress.View(sent.carrier_id, told["key"], payload)
            causation = (sent.command_id, sent.command_source)
            await self.tell(uow, view, self.received_at(delivery), causation=causation)

    async def on_dispatch_event(self, uow: UnitOfWork, delivery: Delivery) -> None:
        payload, at = delivery.event.data, delivery.event.time
        passed_on = egress.PASSED_ON.get(type(payload))
        if passed_on is not None:
            for view in passed_on(payload):
                await self.tell(uow, view, at)
            return
        mapping = egress.STOP_UPDATES.get(type(payload))
        if mapping is None:
            return  # nothing in it for a carrier
        updates = mapping(payload, at)
        if isinstance(payload, RoutePlanned):
            await self._remember(uow, payload, at)
        known = await self._known_stops(uow, updates)
        for view in egress.status_views(egress.resolve(updates, known), at):
            await self.tell(uow, view, at)

    async def tell(
        self,
        uow: UnitOfWork,
        view: egress.View,
        time: datetime,
        *,
        known_active: bool = False,
        causation: tuple[str, str] | None = None,
    ) -> None:
        """Publish ``view`` on its carrier's topic and queue it for the carrier's webhooks
        (both in this transaction): only to a carrier of the registry. ``causation``: the
        carrier's own id and source of the command it answers."""
        if not known_active and view.carrier_id not in await self.registry.active(uow.session):
            self.unroutable += 1
            return
        event = uow.emit(
            view.payload,
            key=view.key,
            time=time,
            topic=CARRIER_EVENTS.for_carrier(view.carrier_id),
            causation=causation,
        )
        queued = await self.subscriptions.queue(uow, view.carrier_id, event)
        if queued:
            uow.on_commit(self.emitted_webhooks)

    async def _remember(self, uow: UnitOfWork, route: RoutePlanned, at: datetime) -> None:
        rows = [
            {
                "route_id": route.route_id,
                "booking_id": s.booking_id,
                "stop_id": s.stop_id,
                "carrier_id": s.carrier_id,
                "hub_id": route.hub_id,
                "parcels": s.parcels,
                "planned_at": at,
            }
            for s in route.stops
        ]
        statement = insert_ignoring(
            uow.session, store.route_stops, "route_id", "booking_id", "stop_id"
        )
        await uow.session.execute(statement, rows)

    async def _known_stops(
        self, uow: UnitOfWork, updates: list[egress.StopUpdate]
    ) -> list[egress.KnownStop]:
        routes = {u.route_id for u in updates if u.carrier_id is None and u.route_id}
        bookings = {u.booking_id for u in updates if u.carrier_id is None and u.booking_id}
        if not routes and not bookings:
            return []
        rs = store.route_stops.c
        query = select(store.route_stops).where(
            rs.route_id.in_(sorted(routes)) | rs.booking_id.in_(sorted(bookings))
        )
        return [
            egress.KnownStop(r.route_id, r.booking_id, r.stop_id, r.carrier_id, r.hub_id, r.parcels)
            for r in await uow.session.execute(query)
        ]


class Subscriptions:
    """The active webhook subscriptions per carrier, read again every few seconds (the
    API that changes them may run in another process)."""

    def __init__(self, refresh_seconds: float = 2.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._by_carrier: dict[str, list[tuple[str, frozenset[str] | None]]] = {}
        self._read_at = float("-inf")

    def forget(self) -> None:
        self._read_at = float("-inf")

    async def of(self, uow: UnitOfWork, carrier_id: str) -> list[tuple[str, frozenset[str] | None]]:
        if time.monotonic() - self._read_at > self.refresh_seconds:
            w = store.webhook_subscriptions.c
            rows = await uow.session.execute(
                select(w.id, w.carrier_id, w.event_types).where(w.active == 1)
            )
            by_carrier: dict[str, list[tuple[str, frozenset[str] | None]]] = {}
            for row in rows:
                types = frozenset(row.event_types) if row.event_types else None
                by_carrier.setdefault(row.carrier_id, []).append((row.id, types))
            self._by_carrier = by_carrier
            self._read_at = time.monotonic()
        return self._by_carrier.get(carrier_id, [])

    async def queue(self, uow: UnitOfWork, carrier_id: str, event: Emitted) -> int:
        """A delivery per subscription of the carrier that wants this type (the bytes
        published on its topic); how many."""
        event_type = event.type
        rows = [
            {
                "subscription_id": subscription,
                "carrier_id": carrier_id,
                "event_id": event.id,
                "event_type": event_type,
                "payload": event.encoded,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": datetime.now(UTC),
                "created_at": datetime.now(UTC),
            }
            for subscription, types in await self.of(uow, carrier_id)
            if types is None or event_type in types
        ]
        if rows:
            statement = insert_ignoring(
                uow.session, store.webhook_deliveries, "subscription_id", "event_id"
            )
            await uow.session.execute(statement, rows)
        return len(rows)


def _document(view: egress.View) -> dict[str, Any]:
    """An answer as kept with its forwarded command (``forwarded_commands.answer``)."""
    payload = view.payload
    return {"type": payload.event_type, "data": payload.model_dump(mode="json"), "key": view.key}
