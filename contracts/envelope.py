"""The CloudEvents 1.0 envelope (structured JSON mode) every message travels in.

``type`` is the discriminator and ``subject`` the hub id (the Kafka key). ``data`` is the
payload, one of the pydantic models registered with :func:`message`.

What the wire carries is JSON, and :func:`decode` reads it as the published JSON Schemas
say (``contracts/schemas/``): strictly (``"5"`` is no integer, ``1803000000`` no
date-time), at most :data:`MAX_RECORD_BYTES`, no ``NaN``/``Infinity`` and no nesting
deeper than a JSON parser should follow. Whatever it cannot read is a
:class:`ContractError` with a reason, never another exception.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Generic, Literal, TypeVar

import orjson
import pydantic_core
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from contracts.topics import CARRIER_TOPICS, TOPICS

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"
# The largest record a consumer reads, uncompressed (Kafka's max.message.bytes limits the
# *compressed* batch: 1 MiB of it may hold far more JSON). The largest command a contract
# allows (500 stops) is about 60 kB.
MAX_RECORD_BYTES: Final = 1024 * 1024
# CloudEvents extension attributes on an event that answers a command: the command's id
# and source (its CloudEvents identity)
CAUSATION_ATTRIBUTES: Final = ("causationid", "causationsource")


# An event's identity (``source`` + ``id``) is kept in the consumer's inbox; PostgreSQL's
# text cannot hold the NUL character, so a record whose identity has one is refused at
# the door (not_cloudevent) instead of failing its batch in the database.
NO_NUL: Final = r"^[^\x00]*$"


class Payload(BaseModel):
    """Base of every command and event payload. Unknown fields are refused so that a
    typo in a producer is caught at the consumer's door rather than silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[str]


P = TypeVar("P", bound=Payload)

# type string -> payload model, filled by @message
REGISTRY: dict[str, type[Payload]] = {}


def message(event_type: str, topic: str):
    """Register a payload model under its CloudEvents ``type`` on its topic."""

    def register(cls: type[P]) -> type[P]:
        if event_type in REGISTRY and REGISTRY[event_type] is not cls:
            raise ValueError(f"message type {event_type!r} registered twice")
        cls.event_type = event_type
        cls.topic = topic
        REGISTRY[event_type] = cls
        return cls

    return register


class CloudEvent(BaseModel, Generic[P]):
    """A typed envelope. ``CloudEvent[BookingRequested]`` validates the payload too.
    Further attributes (CloudEvents extensions) are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]  # CloudEvents 1.0 requires it, and so does the service
    id: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    source: str = Field(min_length=1, max_length=500, pattern=NO_NUL)
    type: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    subject: str | None = Field(default=None, max_length=200)
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    data: P


class AnswerEvent(CloudEvent[P], Generic[P]):
    """The envelope of events on a topic that answers commands (booking's events): an
    answer names the command it answers by its CloudEvents identity, so that a client can
    match it to what it sent without guessing. Events that answer no command (a no-show)
    carry neither attribute."""

    causationid: str | None = Field(
        default=None,
        max_length=200,
        description="The `id` of the command this event answers (absent when it answers none).",
    )
    causationsource: str | None = Field(
        default=None,
        max_length=500,
        description="The `source` of the command this event answers (with `causationid`, the "
        "command's CloudEvents identity).",
    )


class RawCloudEvent(BaseModel):
    """The envelope before the payload is known: what a record must be before its type
    is looked at."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    source: str = Field(min_length=1, max_length=500, pattern=NO_NUL)
    type: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    subject: str | None = Field(default=None, max_length=200)
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    data: dict[str, Any]


# topics whose events may answer commands
ANSWER_TOPICS: Final = frozenset(t.name for t in (*TOPICS, *CARRIER_TOPICS) if t.answers)


def envelope_for(model: type[Payload]) -> type[CloudEvent[Any]]:
    """The envelope class of a payload model: :class:`AnswerEvent` on a topic that answers
    commands, :class:`CloudEvent` elsewhere."""
    return AnswerEvent if model.topic in ANSWER_TOPICS else CloudEvent


_ENVELOPES: dict[type[Payload], Any] = {}


def envelope_class(model: type[Payload]) -> Any:
    """``envelope_for(model)[model]``, looked up once per type: pydantic's own lookup of a
    parametrized generic costs more than validating a small payload."""
    try:
        return _ENVELOPES[model]
    except KeyError:
        envelope = _ENVELOPES[model] = envelope_for(model)[model]  # type: ignore[index]  # a run-time class
        return envelope


class ContractError(ValueError):
    """A message that is not JSON, not a CloudEvent, of an unknown type, or whose payload
    does not satisfy its contract. It is a poison message: dead-letter it, move on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _short_errors(exc: ValidationError, *, skip: int = 0) -> str:
    """The first errors, each with where it is (``skip``: leading path parts to leave out)."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"][skip:]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# The first ``"type": "…"`` in a record: a guess at its type, checked after validation.
_TYPE_GUESS: Final = re.compile(rb'"type"\s*:\s*"([^"\\]{1,200})"')


def decode(
    raw: bytes | str, *, allowed: set[str] | None = None, max_bytes: int = MAX_RECORD_BYTES
) -> CloudEvent[Any]:
    """Parse and validate one message. Raises :class:`ContractError` with a clear reason:
    ``too_large``, ``not_json``, ``not_cloudevent``, ``unknown_type``, ``invalid_payload``."""
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > max_bytes:
        raise ContractError(
            "too_large", f"the record is {len(raw)} bytes, more than the {max_bytes} bytes read"
        )
    event = _decode_guessed(raw, allowed)
    if event is not None:
        return event
    try:
        # jiter: refuses invalid UTF-8, NaN and Infinity, and nesting deeper than ~200
        doc = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise ContractError("not_json", str(exc)) from exc
    if not isinstance(doc, dict):
        raise ContractError("not_cloudevent", "the message is JSON but not an object")
    model = REGISTRY.get(doc["type"]) if isinstance(doc.get("type"), str) else None
    if model is None or (allowed is not None and model.event_type not in allowed):
        try:
            RawCloudEvent.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise ContractError("not_cloudevent", _short_errors(exc)) from exc
        raise ContractError("unknown_type", f"no contract for type {doc['type']!r} here")
    try:
        # strict, from the JSON itself: the types the schema says and no coercion
        return envelope_class(model).model_validate_json(raw, strict=True)
    except ValidationError as exc:
        if all(err["loc"][:1] == ("data",) for err in exc.errors()):
            detail = _short_errors(exc, skip=1)
            raise ContractError("invalid_payload", f"{model.event_type}: {detail}") from exc
        raise ContractError("not_cloudevent", _short_errors(exc)) from exc


def _decode_guessed(raw: bytes, allowed: set[str] | None) -> CloudEvent[Any] | None:
    """The common case in one parse: the record validated against the envelope of the type
    its first ``"type"`` names, kept only if the envelope's own ``type`` is that one (so the
    right contract was applied). Anything else (a wrong guess, an invalid record) is None,
    and :func:`decode` reads the record its careful way, with its exact reasons. Parsing the
    JSON once for the type and again to validate cost ~4 µs of a decision's ~22 µs decode.

    The guess may only accept what the careful way accepts: the same parser (jiter, the
    same nesting limit, UTF-8 checked); ``NaN``/``Infinity``, which validation alone would
    take in an extension attribute, send the record the careful way."""
    guess = _TYPE_GUESS.search(raw)
    if guess is None or b"NaN" in raw or b"Infinity" in raw:
        return None
    model = REGISTRY.get(guess[1].decode(errors="replace"))
    if model is None or (allowed is not None and model.event_type not in allowed):
        return None
    try:
        event: CloudEvent[Any] = envelope_class(model).model_validate_json(raw, strict=True)
    except ValidationError:
        return None
    return event if event.type == model.event_type else None


def new_event(
    payload: Payload,
    *,
    source: str,
    subject: str | None,
    time: datetime | None = None,
    event_id: str | None = None,
    extensions: Mapping[str, str] | None = None,
    trusted: bool = False,
) -> CloudEvent[Any]:
    """``extensions``: CloudEvents extension attributes (e.g. :data:`CAUSATION_ATTRIBUTES`).
    ``trusted``: the caller's own payload and attributes (a service emitting an event), so
    the envelope is built without validating them again — about a third of what making a
    booking's outcome event cost (docs/booking-throughput.md)."""
    envelope = envelope_class(type(payload))
    make = envelope.model_construct if trusted else envelope
    return make(
        specversion=SPECVERSION,
        id=event_id or new_event_id(),
        source=source,
        type=payload.event_type,
        time=time or datetime.now(UTC),
        subject=subject,
        data=payload,
        **(extensions or {}),
    )


def encode(event: CloudEvent[Any]) -> bytes:
    """The structured-mode JSON of ``event``; causation attributes only when set."""
    # read from the instance's fields: getattr on an envelope without these fields goes
    # through pydantic's __getattr__ and an AttributeError, ~5 µs each, on every event
    fields = event.__dict__
    unset: set[str] = {n for n in CAUSATION_ATTRIBUTES if n in fields and fields[n] is None}
    return event.model_dump_json(exclude=unset or None).encode()


def new_event_id() -> str:
    """A random (version 4) UUID as text: what ``str(uuid.uuid4())`` gives, without the
    UUID object (1.3 µs instead of 2.8 here; every event published takes one)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode_new(
    payload: Payload,
    *,
    event_id: str,
    source: str,
    subject: str | None,
    time: datetime,
    data: dict[str, Any] | None = None,
    extensions: Mapping[str, str] | None = None,
) -> bytes:
    """``encode(new_event(payload, …, trusted=True))``: the same JSON document, for a
    service emitting its own event, without building the envelope model. ``data``: the
    payload's ``model_dump(mode="json")`` when the caller made it already (a booking
    decision stores it too); otherwise the payload's own JSON goes in as it is. Building
    and dumping the envelope cost ~25 µs of every booking decision, this ~3 µs
    (docs/booking-throughput.md)."""
    document: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": source,
        "type": payload.event_type,
        "time": time,
        "subject": subject,
        "datacontenttype": CONTENT_TYPE,
        "data": orjson.Fragment(payload.__pydantic_serializer__.to_json(payload))
        if data is None
        else data,
    }
    if extensions:
        document.update(extensions)
    try:
        return orjson.dumps(document, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:  # what orjson will not write (an integer past 64 bits)
        return encode(
            new_event(
                payload,
                source=source,
                subject=subject,
                time=time,
                event_id=event_id,
                extensions=extensions,
                trusted=True,
            )
        )
