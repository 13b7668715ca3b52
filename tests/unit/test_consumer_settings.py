"""The consumers' fetch settings reach each service's librdkafka consumer: the long-poll
wait and the least a fetch is answered with (MICROHUB_KAFKA_FETCH_MIN_BYTES), and a
value out of range is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.booking.service import BookingService
from services.runtime.settings import Settings


def test_each_consumer_fetches_as_configured(tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never contacted
        data_dir=tmp_path,
        kafka_fetch_min_bytes=65536,
        kafka_fetch_max_wait_ms=5,
    )
    service = BookingService(
        settings, settings.bootstrap_list(), database_url=f"sqlite:///{tmp_path}/b.db"
    )
    configs = [c.subscription.config for c in service.consumers]
    assert configs and all(c["fetch.min.bytes"] == 65536 for c in configs)
    assert all(c["fetch.wait.max.ms"] == 5 for c in configs)
    default = Settings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path)
    assert default.kafka_fetch_min_bytes == 1  # answered as soon as anything is there


@pytest.mark.parametrize("value", ["0", "-1", str(2 * 1024 * 1024), "64k"])
def test_a_fetch_min_bytes_out_of_range_is_refused_by_name(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROHUB_KAFKA_FETCH_MIN_BYTES", value)
    with pytest.raises(ValidationError, match="kafka_fetch_min_bytes"):
        Settings()
