"""A record is decoded in one parse when its first ``"type"`` names its contract
(contracts.envelope._decode_guessed), and that shortcut may never change an answer: for
any record, valid or hostile, ``decode`` returns the same event or refuses with the same
reason and detail as the careful way (parse, look the type up, validate)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import contracts.envelope as envelope_module
from contracts.envelope import REGISTRY, CloudEvent, ContractError, decode
from tests.support.carrier import consignment, envelope

REQUESTED = "microhub.booking.requested.v1"
CANCELLED = "microhub.booking.cancellation_requested.v1"


def _request() -> dict[str, Any]:
    body = {
        "carrier_id": "carrier-a",
        "carrier_reference": "ref-1",
        "hub_id": "test-hub",
        "slot_start": "2027-03-01T08:00:00+00:00",
        "consignment": consignment(),
    }
    return envelope(REQUESTED, body, time=datetime(2027, 3, 1, tzinfo=UTC), subject="test-hub")


def _careful(raw: bytes, allowed: set[str] | None) -> CloudEvent[Any] | ContractError:
    """decode without the one-parse shortcut."""
    shortcut = envelope_module._decode_guessed
    envelope_module._decode_guessed = lambda _raw, _allowed: None
    try:
        return decode(raw, allowed=allowed)
    except ContractError as exc:
        return exc
    finally:
        envelope_module._decode_guessed = shortcut


def _either(raw: bytes, allowed: set[str] | None) -> CloudEvent[Any] | ContractError:
    try:
        return decode(raw, allowed=allowed)
    except ContractError as exc:
        return exc


def _same(a: CloudEvent[Any] | ContractError, b: CloudEvent[Any] | ContractError) -> bool:
    if isinstance(a, ContractError) or isinstance(b, ContractError):
        return (
            isinstance(a, ContractError)
            and isinstance(b, ContractError)
            and (a.reason, a.detail) == (b.reason, b.detail)
        )
    return type(a) is type(b) and a.model_dump() == b.model_dump()


# raw JSON fragments a hostile or careless producer might add as an attribute
_FRAGMENTS = [
    b"NaN",
    b"-Infinity",
    b"1e400",
    b"1" + b"0" * 30,
    b'"\\ud800"',
    b'"\\u0074ype"',
    b"[" * 199 + b"]" * 199,
    b"[" * 201 + b"]" * 201,
    b'"microhub.booking.requested.v1"',
    json.dumps(CANCELLED).encode(),
    b'"\xff\xfe"',
    b'{"type": "microhub.booking.requested.v1"}',
    b"true",
]
_KEYS = [b'"x"', b'"type"', b'"data"', b'"specversion"', b'"id"', b'"time"']


@settings(max_examples=400, deadline=None)
@given(
    insertions=st.lists(
        st.tuples(st.sampled_from(_KEYS), st.sampled_from(_FRAGMENTS), st.booleans()),
        max_size=3,
    ),
    event_type=st.sampled_from([REQUESTED, CANCELLED, "microhub.unknown.v1", "", "x" * 300]),
    allowed=st.sampled_from([None, {REQUESTED}, {CANCELLED}, set(REGISTRY)]),
    drop=st.sampled_from([None, "specversion", "type", "data", "time"]),
)
def test_the_shortcut_answers_every_record_as_the_careful_way_does(
    insertions: list[tuple[bytes, bytes, bool]],
    event_type: str,
    allowed: set[str] | None,
    drop: str | None,
) -> None:
    document = _request()
    document["type"] = event_type
    if drop is not None:
        del document[drop]
    raw = json.dumps(document).encode()
    for key, fragment, first in insertions:
        member = key + b": " + fragment
        # first: before every other member (so before the envelope's own "type")
        raw = b"{" + member + b", " + raw[1:] if first else raw[:-1] + b", " + member + b"}"
    assert _same(_either(raw, allowed), _careful(raw, allowed)), raw[:200]


def test_a_plain_request_is_decoded_by_the_shortcut() -> None:
    raw = json.dumps(_request()).encode()
    event = envelope_module._decode_guessed(raw, None)
    assert event is not None and event.type == REQUESTED
    assert _same(event, _careful(raw, None))


def test_a_type_named_inside_the_payload_first_does_not_choose_the_contract() -> None:
    document = _request()
    raw = json.dumps(document).encode()
    # a member before the envelope's own type names another registered type
    raw = b'{"x": {"type": "' + CANCELLED.encode() + b'"}, ' + raw[1:]
    event = decode(raw)
    assert event.type == REQUESTED
    assert type(event.data).event_type == REQUESTED


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_in_an_extension_attribute_is_still_not_json(literal: bytes) -> None:
    raw = json.dumps(_request()).encode()[:-1] + b', "ext": ' + literal + b"}"
    with pytest.raises(ContractError) as info:
        decode(raw)
    assert info.value.reason == "not_json"
