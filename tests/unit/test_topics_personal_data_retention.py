"""Kafka keeps personal data no longer than the databases do: every topic whose messages
can hold personal data (found from the contracts, not listed by hand), its dead letters
and the carriers' topics have a ``retention.ms`` in infra/topics.yaml no longer than the
personal-data retention (MICROHUB_PERSONAL_DATA_RETENTION_DAYS, default 30 days)."""

from __future__ import annotations

import pytest

from contracts.booking import BookingCancelled, BookingConfirmed, BookingRequested
from contracts.carriers import CommandRefused
from contracts.dispatch import RoutePlanned, RouteStarted, StopUpdated
from contracts.fleet import StopDeliveredV2
from contracts.personal_data import carries_personal_data, personal_data_topics
from contracts.topics import (
    BOOKING_COMMANDS,
    BOOKING_EVENTS,
    CARRIER_COMMANDS,
    CARRIER_EVENTS,
    DISPATCH_EVENTS,
    FLEET_TELEMETRY,
)
from services.runtime.settings import Settings
from services.runtime.topics import REPO_TOPICS_FILE, load_carrier_topics, load_topics

DAY_MS = 86_400_000
RETENTION_DAYS = Settings.model_fields["personal_data_retention_days"].default
SPECS = {
    s.name: s for s in [*load_topics(REPO_TOPICS_FILE), *load_carrier_topics(REPO_TOPICS_FILE)]
}


def personal_topic_names() -> list[str]:
    """The topics with personal data, and the dead letters that copy their records."""
    topics = personal_data_topics()
    return [t.name for t in topics] + [t.dlq for t in topics if t.dlq in SPECS]


@pytest.mark.parametrize("name", personal_topic_names())
def test_a_topic_with_personal_data_keeps_it_no_longer_than_the_retention(name: str) -> None:
    retention_ms = int(SPECS[name].configs["retention.ms"])
    assert retention_ms > 0, f"{name} keeps its records for ever"
    assert retention_ms <= RETENTION_DAYS * DAY_MS, (
        f"{name} keeps records {retention_ms / DAY_MS:g} days, "
        f"longer than the personal-data retention ({RETENTION_DAYS} days)"
    )


def test_the_topics_with_personal_data_are_found_from_the_contracts() -> None:
    # a stop's place (requests, confirmations, routes), a proof of delivery (telemetry,
    # per-stop updates): each of these topics carries one of them
    assert {t.name for t in personal_data_topics()} == {
        BOOKING_COMMANDS.name,
        BOOKING_EVENTS.name,
        FLEET_TELEMETRY.name,
        DISPATCH_EVENTS.name,
        CARRIER_COMMANDS.name,
        CARRIER_EVENTS.name,
    }
    for model in (BookingRequested, BookingConfirmed, RoutePlanned, StopUpdated, StopDeliveredV2):
        assert carries_personal_data(model), model
    for model in (BookingCancelled, RouteStarted, CommandRefused):
        assert not carries_personal_data(model), model
    # and every dead letter topic of theirs is checked too
    assert {n for n in personal_topic_names() if n.endswith(".dlq")} == {
        n for n in SPECS if n.endswith(".dlq")
    }
