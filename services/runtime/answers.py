"""Every command gets exactly one answer.

A consumer of commands is declared with an :class:`Answering` (``Consumes(answers=…)``,
services/runtime/wiring.py). Its records then go through :class:`CommandAnswers`:

- the events its handler emits of an answer type (:attr:`Answering.types`) are the
  command's answer: they carry the command's CloudEvents identity (extension attributes
  ``causationid`` and ``causationsource``) and are kept with the command's inbox row;
- a rule the contract's schema cannot express is checked before the handler
  (:meth:`Answering.refuse`); a refused command gets that refusal as its answer;
- the very same command sent again (same ``source`` and ``id``, a later offset) gets the
  kept answer again, under new event ids; a *redelivery* (a record of it Kafka delivers
  again after a crash before the offset commit: at or before the last offset seen) gets
  nothing: its answer was written in the transaction that applied it;
- a command the handler keeps failing on is dead-lettered by the consumer *and* answered
  (:meth:`Answering.failed`, ``internal_error`` at worst), in a transaction of its own.

Consumers of events (dispatch, reporting) declare no :class:`Answering`: a redelivered or
resent event changes nothing and emits nothing there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table

from contracts.envelope import REGISTRY, CloudEvent, Payload
from services.runtime import inbox as inbox_module
from services.runtime.inbox import Delivery
from services.runtime.uow import UnitOfWork, UnitsOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """An event that answers a command, and its Kafka key."""

    payload: Payload
    key: str


class Answering:
    """What a service says about the commands one of its consumers reads (the booking
    service: services/booking/answers.py)."""

    #: event types that answer a command (the others a handler emits answer none)
    types: frozenset[str] = frozenset()

    def refuse(self, command: CloudEvent[Any]) -> Answer | None:
        """The answer to a command that breaks a rule its schema cannot express (checked
        before the handler, nothing stored), or None."""
        return None

    def failed(self, command: CloudEvent[Any], error: BaseException) -> Answer | None:
        """The answer to a command the handler failed on for good."""
        return None


# what a consumer calls for each fresh delivery, inside the batch's unit of work
Handler = Callable[[UnitOfWork, Any], Awaitable[None]]
# what a consumer calls with all of a batch's fresh deliveries, in order
BatchHandler = Callable[[UnitOfWork, list[Any]], Awaitable[None]]


class CommandAnswers:
    """One consumer's side of :class:`Answering` (see the module docstring)."""

    def __init__(self, answering: Answering, *, consumer: str, inbox: Table) -> None:
        self.answering = answering
        self.consumer = consumer
        self.inbox = inbox
        self.resent = 0  # commands answered again
        self.failed = 0  # commands answered after their handler failed for good

    def handler(self, handle: Handler) -> Handler:
        """``handle`` (one delivery) with the command's answer caught (and a refusal
        instead of it); :meth:`keep` records the answers with the inbox rows."""

        async def answered(uow: UnitOfWork, delivery: Delivery) -> None:
            uow.answer_types = self.answering.types
            command = delivery.event
            with uow.answering(command):
                refusal = self.answering.refuse(command)
                if refusal is not None:
                    uow.emit(refusal.payload, key=refusal.key, time=command.time)
                else:
                    await handle(uow, delivery)

        return answered

    def batch_handler(self, handle: BatchHandler) -> BatchHandler:
        """``handle`` (a batch's fresh deliveries, in order) with the refusals answered
        first and left out of the batch. The batch handler opens ``uow.answering`` around
        each command it decides (services/booking/handlers.py), so that its events answer
        it; :meth:`keep` records the answers with the inbox rows."""

        async def answered(uow: UnitOfWork, deliveries: list[Any]) -> None:
            uow.answer_types = self.answering.types
            to_decide = []
            for delivery in deliveries:
                command = delivery.event
                refusal = self.answering.refuse(command)
                if refusal is None:
                    to_decide.append(delivery)
                    continue
                with uow.answering(command):
                    uow.emit(refusal.payload, key=refusal.key, time=command.time)
            await handle(uow, to_decide)

        return answered

    async def keep(self, uow: UnitOfWork) -> None:
        """Keep the answers given in this unit of work with their commands' inbox rows
        (one statement for the batch)."""
        if not uow.answered:
            return
        answered, uow.answered = uow.answered, []
        await inbox_module.record_answers(
            uow.session,
            self.inbox,
            consumer=self.consumer,
            answers=[(command.source, command.id, answer) for command, answer in answered],
        )

    async def record(self, uow: UnitOfWork, fresh: Sequence[Delivery]) -> None:
        """Record the batch's fresh commands in the inbox, each with the answer given to
        it in this unit of work (one statement for the batch; raises
        :class:`services.runtime.inbox.InboxRace` if any was recorded meanwhile)."""
        answered, uow.answered = uow.answered, []
        await inbox_module.record_new(
            uow.session,
            self.inbox,
            consumer=self.consumer,
            deliveries=fresh,
            answers={(command.source, command.id): answer for command, answer in answered},
        )

    async def again(
        self, uow: UnitOfWork, delivery: Delivery, answer: list[dict[str, Any]] | None
    ) -> None:
        """The command was sent again (:func:`services.runtime.inbox.sent_again`, which
        remembered this record's position): its kept answer, again."""
        command = delivery.event
        uow.answer_types = self.answering.types
        with uow.answering(command, keep=False):
            for document in answer or ():
                payload = REGISTRY[document["type"]].model_validate(document["data"])
                uow.emit(payload, key=document["key"], time=command.time)
        self.resent += 1

    async def after_failure(
        self,
        units: UnitsOfWork,
        delivery: Delivery,
        error: BaseException,
        after_commit: Callable[[], Awaitable[None] | None],
        is_transient: Callable[[BaseException], bool],
    ) -> None:
        """The handler failed on the command for good (it is dead-lettered): answer it in a
        transaction of its own, recorded in the inbox like any answer. A transient failure
        here (the database went away) is raised: the record is not committed and comes
        again. Any other is logged: the dead letter is written, the partition moves on."""
        command = delivery.event
        try:
            payload = self.answering.failed(command, error)
            if payload is None:
                return
            async with units(notify=False) as uow:
                claim = await inbox_module.claim(
                    uow.session,
                    self.inbox,
                    consumer=self.consumer,
                    source=command.source,
                    event_id=command.id,
                    topic=delivery.topic,
                    partition=delivery.partition,
                    offset=delivery.offset,
                )
                if not claim.fresh:  # applied meanwhile by another instance: answered there
                    return
                uow.answer_types = frozenset({payload.payload.event_type})
                with uow.answering(command):
                    uow.emit(payload.payload, key=payload.key, time=command.time)
                await self.keep(uow)
            published = after_commit()
            if published is not None:
                await published
            self.failed += 1
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception(
                "%s: could not answer %s %s after its failure",
                self.consumer,
                command.source,
                command.id,
            )
