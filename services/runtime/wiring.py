"""What a service declares once about itself: the topics it consumes (consumer group and
a handler per message type), the topics it publishes, its migrations and its health
port. Everything else is derived from the declaration: the consumers a process runs,
the AsyncAPI document, the KEDA ScaledObjects, the simulation's consumer groups, the
`serve` targets, the migrations `microhub migrate` applies, the ACLs it needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.catalog import envelope_of, messages_on, types_on
from contracts.envelope import Payload
from contracts.topics import Topic
from services.runtime import migrations
from services.runtime.answers import Answering
from services.runtime.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.runtime.consumer import Delivery
    from services.runtime.uow import UnitOfWork

# An unbound method of the service's handlers object: (handlers, unit of work, delivery).
Handler = Callable[[Any, "UnitOfWork", "Delivery"], Awaitable[None]]
# The same, bound to the handlers object: what the consumer calls.
BoundHandler = Callable[["UnitOfWork", "Delivery"], Awaitable[None]]
# A handler of a whole batch's fresh deliveries (handlers, unit of work, deliveries).
BatchHandler = Callable[[Any, "UnitOfWork", "list[Delivery]"], Awaitable[None]]


@dataclass(frozen=True)
class Consumes:
    """A consumer: a topic, its consumer group (``<prefix>microhub-<consumer>``) and what
    to do with each message type. A consumer accepts every contract of its topic; a type
    without a handler goes to ``otherwise``, or is recorded (inbox) and left alone. What
    is no contract of the topic at all is poison: dead-lettered. A consumer of commands
    says how they are answered (``answers``, services/runtime/answers.py): each gets
    exactly one answer, also when it is sent again or its handler fails."""

    topic: Topic
    consumer: str
    handlers: Mapping[type[Payload], Handler]
    description: str
    otherwise: Handler | None = None
    # decides all the fresh deliveries of a fetched batch together (in their order),
    # instead of the per-type handlers one by one: for a service whose decisions cost
    # a few statements per batch, not per record (booking)
    batch: BatchHandler | None = None
    # a consumer of commands: how each command is answered (services/runtime/answers.py)
    answers: Answering | None = None
    # names each delivery before the inbox sees it: (handlers, delivery) -> delivery. A
    # topic whose producers share no id space (every carrier's) needs its ids scoped.
    identify: Callable[[Any, Delivery], Delivery] | None = None
    # a consumer that passes commands on rather than answering them (the gateway): what
    # to do with a command sent again (same identity, another record), (handlers, uow,
    # delivery); its redelivery after a crash is not one. ``answers`` covers the rest.
    resent: Callable[[Any, UnitOfWork, Delivery], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        carried = set(messages_on(self.topic))
        foreign = [m.__name__ for m in self.handlers if m not in carried]
        if foreign:
            raise ValueError(f"{self.consumer}: {foreign} are not messages of {self.topic.name}")

    @property
    def accepts(self) -> frozenset[str]:
        return types_on(self.topic)

    @property
    def envelope(self) -> Any:
        return envelope_of(self.topic)

    def bind(self, target: Any) -> BoundHandler:
        """One callable that routes a delivery to ``target``'s handler for its type."""
        routes = {model.event_type: handler for model, handler in self.handlers.items()}
        otherwise = self.otherwise

        async def route(uow: UnitOfWork, delivery: Delivery) -> None:
            handler = routes.get(delivery.event.type, otherwise)
            if handler is not None:
                await handler(target, uow, delivery)

        route.__name__ = f"on_{self.consumer.replace('-', '_')}"
        return route

    def bind_identify(self, target: Any) -> Callable[[Delivery], Delivery] | None:
        if self.identify is None:
            return None
        identify = self.identify
        return lambda delivery: identify(target, delivery)

    def bind_resent(self, target: Any) -> Callable[[UnitOfWork, Delivery], Awaitable[None]] | None:
        if self.resent is None:
            return None
        resent = self.resent
        return lambda uow, delivery: resent(target, uow, delivery)

    def bind_batch(
        self, target: Any
    ) -> Callable[[UnitOfWork, list[Delivery]], Awaitable[None]] | None:
        if self.batch is None:
            return None
        batch = self.batch

        async def decide(uow: UnitOfWork, deliveries: list[Delivery]) -> None:
            await batch(target, uow, deliveries)

        return decide


@dataclass(frozen=True)
class Publishes:
    """A topic the service writes through its outbox (all contracts registered on it)."""

    topic: Topic
    description: str
    # the consumers whose records cause these events (empty: any of the service's): who
    # must have caught up before what follows is in this topic (the simulation settles so)
    by: tuple[str, ...] = ()

    @property
    def messages(self) -> tuple[type[Payload], ...]:
        return messages_on(self.topic)

    @property
    def envelope(self) -> Any:
        return envelope_of(self.topic)


@dataclass(frozen=True)
class ServiceSpec:
    """A service, declared once (see the module docstring)."""

    name: str
    migrations: Path  # the Alembic scripts of the service's own database
    health_port: int  # where `serve <name>` answers /healthz and /readyz by default
    consumes: tuple[Consumes, ...] = ()
    publishes: tuple[Publishes, ...] = ()
    description: str = ""
    source: str = field(default="")  # CloudEvents source of its events

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", f"microhub/{self.name}")
        names = [c.consumer for c in self.consumes]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.name}: two consumers share a name (a consumer group)")

    @property
    def outbox(self) -> bool:
        return bool(self.publishes)

    def group_ids(self, settings: Settings) -> dict[str, str]:
        """consumer name -> its consumer group, with the settings' prefix."""
        return {c.consumer: settings.group(c.consumer) for c in self.consumes}

    async def migrate(self, engine: AsyncEngine) -> None:
        """Bring the service's database to its newest revision (own version table)."""
        await migrations.upgrade(engine, self.name, self.migrations)
