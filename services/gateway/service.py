"""The gateway: where carriers meet the platform, and the only part that reads or writes a
carrier's own topics.

- ingress: each carrier's commands (``microhub.carriers.<carrier>.commands.v1``, every
  carrier's by pattern) to the internal ``microhub.booking.commands.v1``, the carrier's
  identity bound from the topic, at the receipt time (handlers.py);
- egress: booking's and dispatch's events, as each carrier may see them, to its own topic
  ``microhub.carriers.<carrier>.events.v1`` and its webhooks (egress.py, webhooks.py);
- the carrier registry (registry.py), its admin API and the webhook subscriptions
  (api.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalog import messages_on
from contracts.topics import (
    BOOKING_COMMANDS,
    BOOKING_EVENTS,
    CARRIER_COMMANDS,
    CARRIER_EVENTS,
    DISPATCH_EVENTS,
)
from services.gateway import privacy, store
from services.gateway.handlers import GatewayHandlers, Subscriptions
from services.gateway.registry import Registry, upsert_carriers
from services.gateway.webhooks import WebhookSender
from services.runtime.carriers import carriers_file, load_carriers
from services.runtime.service import Service
from services.runtime.wiring import Consumes, Publishes, ServiceSpec

log = logging.getLogger(__name__)

INGRESS = "gateway-ingress"
EGRESS_BOOKINGS = "gateway-bookings"
EGRESS_DISPATCH = "gateway-dispatch"

SPEC = ServiceSpec(
    name="gateway",
    migrations=Path(__file__).parent / "migrations",
    health_port=8084,
    description="Carriers' own topics: their commands in (identity, receipt time), their "
    "outcomes and deliveries out, webhooks.",
    consumes=(
        Consumes(
            CARRIER_COMMANDS,
            consumer=INGRESS,
            # every booking command (request, cancellation, reschedule, check-in): one the
            # ingress had no handler for would be recorded and dropped, never answered
            handlers=dict.fromkeys(messages_on(BOOKING_COMMANDS), GatewayHandlers.on_command),
            identify=GatewayHandlers.identify,
            resent=GatewayHandlers.on_resend,
            description="Every carrier's commands, each from its own topic (keyed by hub id).",
        ),
        Consumes(
            BOOKING_EVENTS,
            consumer=EGRESS_BOOKINGS,
            handlers={},
            otherwise=GatewayHandlers.on_booking_event,
            description="Booking's outcomes, each to its booking's carrier.",
        ),
        Consumes(
            DISPATCH_EVENTS,
            consumer=EGRESS_DISPATCH,
            handlers={},
            otherwise=GatewayHandlers.on_dispatch_event,
            description="Routes and returns, as each carrier's stops' delivery status; "
            "per-stop updates (stop_updated.v1), each to its stop's carrier unchanged.",
        ),
    ),
    publishes=(
        Publishes(
            BOOKING_COMMANDS,
            description="Carriers' commands, their carrier bound and stamped with the "
            "receipt time, keyed by hub id.",
            by=(INGRESS,),
        ),
        Publishes(
            CARRIER_EVENTS,
            description="A carrier's outcomes, refusals, delivery status and per-stop "
            "updates: its own only, keyed by booking id. An answer's causationid and "
            "causationsource are the carrier's own command id and source.",
        ),
    ),
)


class GatewayService(Service):
    spec = SPEC
    outbox = store.outbox
    inbox = store.inbox

    def prepare(self) -> None:
        self.registry = Registry()
        self.subscriptions = Subscriptions()
        self.sender: WebhookSender | None = None

    def make_handlers(self) -> GatewayHandlers:
        skew = self.settings.max_clock_skew_seconds
        return GatewayHandlers(
            prefix=self.settings.kafka_topic_prefix,
            receipt_time=self.settings.ingress_receipt_time,
            max_clock_skew=timedelta(seconds=skew),
            registry=self.registry,
            subscriptions=self.subscriptions,
            emitted_webhooks=self._wake_sender,
        )

    async def on_start(self) -> None:
        await self.load_carriers()
        settings = self.settings
        if settings.ingress_receipt_time == "sender":
            log.warning(
                "MICROHUB_INGRESS_RECEIPT_TIME=sender: commands are decided at the time "
                "their senders claim. Only for a simulation, whose sender is its clock."
            )
        if not settings.kafka_security_protocol.startswith("SASL"):
            log.warning(
                "Kafka without SASL: no principals, no ACLs. Every client may write any "
                "carrier's commands and read any carrier's events (fine for the embedded "
                "demo; a deployment runs SASL with `microhub carriers apply`)."
            )
        self.sender = WebhookSender(
            self.engine,
            retry_seconds=settings.webhook_retry_seconds,
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private_targets,
        )
        self.sender.start()

    async def purge_tables(
        self, session: AsyncSession, before: datetime, now: datetime
    ) -> dict[str, int]:
        return await privacy.purge(session, before, now)

    async def load_carriers(self, path: Path | None = None) -> int:
        carriers = load_carriers(path or carriers_file(self.settings))
        async with self.unit_of_work() as uow:
            await upsert_carriers(uow.session, carriers, origin="file")
        self.registry.forget()
        log.info("loaded %d carriers from %s", len(carriers), path or carriers_file(self.settings))
        return len(carriers)

    def _wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.notify()

    def _changed(self) -> None:
        self.registry.forget()
        self.subscriptions.forget()
        self._wake_sender()

    def http_routers(self) -> list[Any]:
        from services.gateway import api

        return [
            lambda principal: api.router(
                units=self.units,
                principal=principal,
                prefix=self.settings.kafka_topic_prefix,
                allow_private_targets=self.settings.webhook_allow_private_targets,
                secret_overlap=timedelta(hours=self.settings.webhook_secret_overlap_hours),
                changed=self._changed,
            )
        ]

    def health(self) -> dict[str, Any]:
        report = super().health()
        handlers: GatewayHandlers | None = getattr(self, "handlers", None)
        if handlers is not None:
            report["ingress"] = {"forwarded": handlers.forwarded, "refused": handlers.refused}
            report["egress_unroutable"] = handlers.unroutable
        if self.sender is not None:
            report["webhooks"] = {
                "sent": self.sender.sent,
                "failed_attempts": self.sender.failed_attempts,
            }
        return report

    async def stop(self) -> None:
        if self.sender is not None:
            await self.sender.stop()
        await super().stop()
