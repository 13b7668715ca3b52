"""End to end over a real Kafka wire protocol: booking and dispatch events published with
plain aiokafka (as those services' outboxes do) flow into the reporting service; the month's
report comes out in every format; a rebuild from the topics alone gives the same bytes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from pypdf import PdfReader

from contracts.envelope import encode
from contracts.topics import DISPATCH_EVENTS
from services.reporting.cli import produce_report, rebuild_projection
from services.reporting.model import EmissionsReport, to_json
from services.reporting.render import render
from services.reporting.service import ReportingService
from services.runtime.settings import Settings
from tests.integration.test_reporting_scenario import EVENTS
from tests.support.carrier import TopicReader
from tests.support.reporting import apply
from tests.support.waiting import eventually

CLOSED = datetime(2026, 11, 21, tzinfo=UTC)


@pytest.fixture
async def reporting(
    settings: Settings, topics: list[str], database_url: str
) -> AsyncIterator[ReportingService]:
    service = ReportingService(settings, settings.bootstrap_list(), database_url=database_url)
    await service.start()
    try:
        yield service
    finally:
        if service.started:
            await service.stop()


async def publish(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_list(), enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(settings.topic(topic), value, key=key)
    finally:
        await producer.stop()


async def test_month_flows_in_over_kafka_and_a_rebuild_reproduces_it(
    reporting: ReportingService, settings: Settings, tmp_path: Path
) -> None:
    records = [(e.data.topic, e.subject.encode(), encode(e)) for e in EVENTS]
    poison = (DISPATCH_EVENTS.name, b"ber-westhafen", b'{"specversion": "1.0", "type": "nope"')
    await publish(settings, [*records[:8], poison, *records[8:]])
    # and the same records once more, as after a producer retry: counted once
    await publish(settings, records)

    bookings = sum(1 for e in EVENTS if e.data.topic != DISPATCH_EVENTS.name)
    await eventually(
        lambda: (
            reporting.consumer("reporting-bookings").stats.processed
            + reporting.consumer("reporting-bookings").stats.duplicates
            == 2 * bookings
            and reporting.consumer("reporting-dispatch").stats.processed
            + reporting.consumer("reporting-dispatch").stats.duplicates
            == 2 * (len(EVENTS) - bookings)
            and reporting.dead_lettered == 1
        ),
        what="every record consumed and the poison one dead-lettered",
    )
    assert reporting.consumer("reporting-bookings").stats.processed == bookings

    live = to_json(await reporting.report("berlin", "2026-10", now=CLOSED))
    report = EmissionsReport.from_json(live)
    assert report.totals.routes == 3 and report.totals.consignments == 4

    # the same events applied without Kafka give the same bytes: the wire changes nothing
    direct = ReportingService(
        settings, settings.bootstrap_list(), database_url=f"sqlite:///{tmp_path}/direct.db"
    )
    await direct.migrate()
    for event in EVENTS:
        await apply(direct, event)
    assert to_json(await direct.report("berlin", "2026-10", now=CLOSED)) == live
    await direct.engine.dispose()

    # every format
    csv = render(report, "csv").decode()
    assert csv.startswith("section,key,metric") and "saving_kgco2e" in csv
    html = render(report, "html").decode()
    assert html.count("<svg") == 3 and "Emission factors" in html
    pdf = PdfReader(io.BytesIO(render(report, "pdf")))
    assert len(pdf.pages) >= 2
    assert sum(len(page.images) for page in pdf.pages) == 3  # trend, daily, by hub
    text = "".join(page.extract_text() for page in pdf.pages)
    compact = "".join(text.split())  # table cells wrap long keys
    assert "Appendix:methodology" in compact and "diesel.ttw_kgco2e_per_l" in compact
    assert f"page 1 of {len(pdf.pages)}" in text

    # the dead letter kept its bytes and says why
    async with TopicReader(settings.bootstrap_list(), settings.topic(DISPATCH_EVENTS.dlq)) as dlq:
        await dlq.wait_for(lambda r: len(r.records) >= 1, what="the dead letter")
        assert dlq.records[0].value == poison[2]
        assert dict(dlq.records[0].headers)["x-microhub-error-reason"] == b"not_json"

    # rebuild: a fresh projection from the topics alone reproduces the report byte for byte
    rebuilt_url = f"sqlite:///{tmp_path}/rebuilt.db"
    # what does not come from Kafka (published versions, meter readings) is carried over
    counts = await rebuild_projection(
        settings, database_url=rebuilt_url, carry_over_from=reporting.database_url
    )
    assert counts["records"] == 2 * len(EVENTS) + 1
    assert counts["skipped_poison"] == 1 and counts["duplicates"] == len(EVENTS)
    rebuilt = await produce_report(
        settings, city="berlin", month="2026-10", fmt="json", database_url=rebuilt_url
    )
    assert rebuilt == live

    # a rebuild never mixes into an existing projection
    with pytest.raises(ValueError, match="fresh database"):
        await rebuild_projection(settings, database_url=rebuilt_url)
