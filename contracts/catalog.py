"""Which messages travel on which topic, derived from the registry of contracts: the one
place a topic's payload union comes from (consumers, AsyncAPI, schemas alike).

Importing this module imports every message module, so the registry is complete.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Union

from contracts import booking as _booking  # noqa: F401 - registers the booking messages
from contracts import carriers as _carriers  # noqa: F401 - registers the carriers' own
from contracts import dispatch as _dispatch  # noqa: F401 - registers the dispatch messages
from contracts import fleet as _fleet  # noqa: F401 - registers the fleet messages
from contracts.envelope import ANSWER_TOPICS, REGISTRY, AnswerEvent, CloudEvent, Payload
from contracts.topics import Topic


def messages_on(topic: Topic) -> tuple[type[Payload], ...]:
    """Every payload model registered on ``topic`` (or on a topic it ``carries``), in the
    order of their type names."""
    names = {topic.name, *topic.carries}
    return tuple(
        REGISTRY[t]
        for t in sorted(REGISTRY)
        if REGISTRY[t].topic in names or t in topic.carries_types
    )


def types_on(topic: Topic) -> frozenset[str]:
    """The CloudEvents ``type`` values a consumer of ``topic`` must accept: every contract
    published there (one it has no use for is not poison)."""
    return frozenset(m.event_type for m in messages_on(topic))


@cache
def envelope_of(topic: Topic) -> Any:
    """``CloudEvent[A | B | …]`` of the topic's payloads: one schema per topic, for
    FastStream's AsyncAPI document."""
    models = messages_on(topic)
    if not models:
        raise ValueError(f"no message is registered on {topic.name}")
    envelope: Any = AnswerEvent if topic.name in ANSWER_TOPICS else CloudEvent
    return envelope[Union[models]]  # noqa: UP007 - a union built at run time
