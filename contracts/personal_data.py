"""Which messages can carry personal data, from their models: a recipient's place (any
``GeoPoint``: a stop's location; a hub's or depot's too, which is the conservative side)
or a proof of delivery (where, who signed, the signature and photo references).

Topics carrying such messages (and their dead letters, which copy them) may keep them
no longer than the personal-data retention (``MICROHUB_PERSONAL_DATA_RETENTION_DAYS``,
docs/privacy.md): ``retention.ms`` in infra/topics.yaml, checked by a test.
"""

from __future__ import annotations

import types
from functools import cache
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from contracts.catalog import messages_on
from contracts.common import GeoPoint
from contracts.fleet import ProofOfDelivery
from contracts.topics import CARRIER_TOPICS, TOPICS, Topic

PERSONAL_MODELS: tuple[type[BaseModel], ...] = (GeoPoint, ProofOfDelivery)


def _holds_personal(annotation: Any, seen: set[type]) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return carries_personal_data(annotation, seen)
    if get_origin(annotation) in (Union, types.UnionType) or get_args(annotation):
        return any(_holds_personal(a, seen) for a in get_args(annotation))
    return False


def carries_personal_data(model: type[BaseModel], seen: set[type] | None = None) -> bool:
    """Can a ``model`` hold personal data, at any depth of its fields?"""
    if issubclass(model, PERSONAL_MODELS):
        return True
    seen = seen if seen is not None else set()
    if model in seen:
        return False
    seen.add(model)
    return any(_holds_personal(f.annotation, seen) for f in model.model_fields.values())


@cache
def personal_data_topics() -> tuple[Topic, ...]:
    """The platform's and the carriers' topics (templates) whose messages can hold
    personal data."""
    return tuple(
        t for t in (*TOPICS, *CARRIER_TOPICS) if any(map(carries_personal_data, messages_on(t)))
    )
