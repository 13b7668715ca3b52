"""The CloudEvents 1.0 envelope (structured JSON mode) every message travels in.

``type`` is the discriminator and ``subject`` the hub id (the Kafka key). ``data`` is the
payload, one of the pydantic models registered with :func:`message`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Generic, Literal, TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"


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
    """A typed envelope. ``CloudEvent[BookingRequested]`` validates the payload too."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = SPECVERSION
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    subject: str | None = Field(default=None, max_length=200)
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    data: P


class RawCloudEvent(BaseModel):
    """The envelope before the payload is known: used to read ``type`` first."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    subject: str | None = Field(default=None, max_length=200)
    datacontenttype: Literal["application/json"] = CONTENT_TYPE
    data: dict[str, Any]


class ContractError(ValueError):
    """A message that is not JSON, not a CloudEvent, of an unknown type, or whose payload
    does not satisfy its contract. It is a poison message: dead-letter it, move on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _short_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


_ENVELOPES: dict[type[Payload], Any] = {}


def envelope_class(model: type[Payload]) -> Any:
    """``CloudEvent[model]``, looked up once per type: pydantic's own lookup of a
    parametrized generic costs more than validating a small payload."""
    try:
        return _ENVELOPES[model]
    except KeyError:
        envelope = _ENVELOPES[model] = CloudEvent[model]  # type: ignore[valid-type]  # a run-time class
        return envelope


def decode(raw: bytes | str, *, allowed: set[str] | None = None) -> CloudEvent[Any]:
    """Parse and validate one message. Raises :class:`ContractError` with a clear reason."""
    try:
        # orjson: several times faster than json, refuses NaN/Infinity and invalid UTF-8
        # as JSON does not have them, and stops at a nesting depth of 1 024
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError("not_json", str(exc)) from exc
    if isinstance(doc, dict):
        # The common case, a valid message: envelope and payload validated in one pass.
        # Anything wrong goes the long way below, which says what is wrong.
        model = REGISTRY.get(doc.get("type"))  # type: ignore[arg-type]
        if model is not None and (allowed is None or model.event_type in allowed):
            try:
                return envelope_class(model).model_validate(doc)
            except ValidationError:
                pass
    if not isinstance(doc, dict):
        raise ContractError("not_cloudevent", "the message is JSON but not an object")
    try:
        envelope = RawCloudEvent.model_validate(doc)
    except ValidationError as exc:
        raise ContractError("not_cloudevent", _short_errors(exc)) from exc
    model = REGISTRY.get(envelope.type)
    if model is None or (allowed is not None and envelope.type not in allowed):
        raise ContractError("unknown_type", f"no contract for type {envelope.type!r} here")
    try:
        payload = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise ContractError("invalid_payload", f"{envelope.type}: {_short_errors(exc)}") from exc
    return envelope_class(model).model_construct(
        **{**envelope.model_dump(exclude={"data"}), "data": payload}
    )


def new_event(
    payload: Payload,
    *,
    source: str,
    subject: str | None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> CloudEvent[Any]:
    return envelope_class(type(payload))(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=payload.event_type,
        time=time or datetime.now(UTC),
        subject=subject,
        data=payload,
    )


def encode(event: CloudEvent[Any]) -> bytes:
    return event.model_dump_json(exclude_none=False).encode()
