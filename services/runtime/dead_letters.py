"""Dead letters: a record a consumer cannot apply goes, unchanged, to ``<topic>.dlq`` with
headers saying why and where it came from, and the consumer moves on.

The headers and reasons are part of the published interface (README, AsyncAPI): an
operator (or a carrier's support) reads them. A record too large for the DLQ topic is cut
to :data:`MAX_COPY_BYTES` there (``x-microhub-truncated``); the whole record stays in its
own topic, where ``x-microhub-original-…`` point, for as long as that topic keeps it.
"""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker

from contracts.envelope import MAX_RECORD_BYTES
from contracts.topics import dead_letter_topic

log = logging.getLogger(__name__)

# The largest copy of a record a dead letter carries: what a consumer reads at most. The
# DLQ topics take somewhat more (infra/topics.yaml), for the headers.
MAX_COPY_BYTES = MAX_RECORD_BYTES

# x-microhub-error-reason: why the record is here
REASONS = {
    "too_large": "larger than a consumer reads (1 MiB of JSON, uncompressed); not parsed",
    "not_json": "not UTF-8 JSON, or JSON no consumer reads: NaN/Infinity, nesting deeper "
    "than about 200 levels; also an empty record or a tombstone",
    "not_cloudevent": "JSON, but not a CloudEvents 1.0 envelope the schemas describe "
    "(e.g. no specversion, a time without an offset)",
    "unknown_type": "a type that is no contract of this topic",
    "invalid_payload": "data does not validate against the type's JSON Schema",
    "undecodable": "reading it failed in a way no contract names (a bug in the consumer)",
    "handler_failed": "the consumer failed on it three times (a bug or data it cannot "
    "handle); a command got an internal_error answer besides",
}

HEADERS = {
    "x-microhub-error-reason": "why: one of the reasons (enum)",
    "x-microhub-error-class": "the error's class, e.g. ContractError, ValueError",
    "x-microhub-error-message": "what exactly (at most 2000 characters)",
    "x-microhub-original-topic": "where the record was (with the consumer's topic prefix)",
    "x-microhub-original-partition": "its partition",
    "x-microhub-original-offset": "its offset",
    "x-microhub-original-size": "its size in bytes (uncompressed)",
    "x-microhub-truncated": "'true' when the value here is only the record's first "
    f"{MAX_COPY_BYTES} bytes, else 'false'",
    "x-microhub-consumer": "the consumer (consumer group without the prefix 'microhub-') "
    "that gave up on it",
}


def dead_letter_headers(
    record: Any, *, consumer: str, reason: str, error: BaseException | str
) -> dict[str, str]:
    value = record.value or b""
    error_class = type(error).__name__ if isinstance(error, BaseException) else "ContractError"
    return {
        "x-microhub-error-reason": reason,
        "x-microhub-error-class": error_class,
        "x-microhub-error-message": str(error)[:2000],
        "x-microhub-original-topic": record.topic,
        "x-microhub-original-partition": str(record.partition),
        "x-microhub-original-offset": str(record.offset),
        "x-microhub-original-size": str(len(value)),
        "x-microhub-truncated": "true" if len(value) > MAX_COPY_BYTES else "false",
        "x-microhub-consumer": consumer,
    }


class DeadLetters:
    """Publishes poison records, unchanged (cut to :data:`MAX_COPY_BYTES`), to
    ``<topic>.dlq`` with diagnostic headers. Without a broker (a replay: the live consumer
    dead-lettered them already) it only counts them."""

    def __init__(self, broker: KafkaBroker | None, *, consumer: str) -> None:
        self.broker = broker
        self.consumer = consumer
        self.count = 0

    async def send(self, record: Any, *, reason: str, error: BaseException | str) -> None:
        headers = dead_letter_headers(record, consumer=self.consumer, reason=reason, error=error)
        self.count += 1
        if self.broker is None:
            return
        value = record.value if record.value is not None else b""
        await self.broker.publish(
            value[:MAX_COPY_BYTES],
            dead_letter_topic(record.topic),
            key=record.key,
            headers=headers,
        )
        log.warning(
            "dead-lettered %s[%s]@%s (%s): %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            str(error)[:500],
        )
