"""The attack probes of issue 12, thrown at a running booking service on one partition
(one hub's key), followed by a valid command: that command is answered (nothing blocked
the partition), every probe that can be read is answered exactly once with a reason, and
every probe that cannot is in the DLQ exactly once, saying why."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from services.booking.service import BookingService
from services.runtime.settings import Settings
from tests.support.carrier import Carrier, TopicReader, envelope, monday_after
from tests.support.groups import drained
from tests.support.hubs import TEST_HUB

NOW = monday_after(datetime.now(UTC)) + timedelta(hours=5)
SLOT = (NOW + timedelta(days=1, hours=3)).replace(minute=0, second=0, microsecond=0)
REQUESTED = "microhub.booking.requested.v1"


def _command(carrier: Carrier, reference: str, **changes: Any) -> dict[str, Any]:
    data = carrier.request_data(reference, hub_id=TEST_HUB, slot_start=SLOT)
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for step in parents:
            node = node[int(step)] if step.isdigit() else node[step]
        node[last] = value
    return envelope(REQUESTED, data, time=NOW, subject=TEST_HUB)


def _bytes(document: Any) -> bytes:
    return json.dumps(document).encode()


async def test_the_attack_probes_get_answers_or_dead_letters_and_block_nothing(
    booking: BookingService,
    booking_settings: Settings,
    carrier: Carrier,
    outcomes: TopicReader,
) -> None:
    no_specversion = _command(carrier, "p-no-specversion")
    del no_specversion["specversion"]
    duplicate_stops = _command(carrier, "p-duplicate-stops")
    for stop in duplicate_stops["data"]["consignment"]["stops"]:
        stop["stop_id"] = "s0"
    reused_id = _command(carrier, "p-reused-id")
    reused_id_elsewhere = _command(carrier, "p-reused-id-elsewhere")
    reused_id_elsewhere.update(id=reused_id["id"], source="carrier/another")
    resent = _command(carrier, "p-resent")
    huge = _command(carrier, "p-huge")
    huge["padding"] = "x" * 1_100_000

    # name -> (record, what must become of it: ("dlq", reason) or ("answer", type, reason))
    probes: dict[str, tuple[bytes | None, tuple[str, ...]]] = {
        "deeply nested": (b"[" * 200_000, ("dlq", "not_json")),
        "deeply nested objects": (b'{"a":' * 100_000, ("dlq", "not_json")),
        "NaN": (
            _bytes(_command(carrier, "p-nan")).replace(b"30.0", b"NaN"),
            ("dlq", "not_json"),
        ),
        "not UTF-8": (b"\xff\xfe\x00", ("dlq", "not_json")),
        "not JSON, said to be": (b"{not json", ("dlq", "not_json")),  # content-type: JSON
        "empty": (b"", ("dlq", "not_json")),
        "tombstone": (None, ("dlq", "not_json")),
        "JSON null": (b"null", ("dlq", "not_cloudevent")),
        "no specversion": (_bytes(no_specversion), ("dlq", "not_cloudevent")),
        "string for an integer": (
            _bytes(_command(carrier, "p-string", consignment__parcel_count="4")),
            ("dlq", "invalid_payload"),
        ),
        "1e400": (
            _bytes(_command(carrier, "p-inf")).replace(b"30.0", b"1e400"),
            ("dlq", "invalid_payload"),
        ),
        "unknown type": (
            _bytes({**_command(carrier, "p-type"), "type": "microhub.booking.hack.v1"}),
            ("dlq", "unknown_type"),
        ),
        "stops do not add up": (
            _bytes(_command(carrier, "p-mismatch", consignment__parcel_count=999)),
            ("answer", "microhub.booking.command_rejected.v2", "parcel_count_mismatch"),
        ),
        "duplicate stop ids": (
            _bytes(duplicate_stops),
            ("answer", "microhub.booking.command_rejected.v2", "duplicate_stop_id"),
        ),
        "9999-12-31": (
            _bytes(_command(carrier, "p-9999", slot_start="9999-12-31T23:00:00+00:00")),
            ("answer", "microhub.booking.rejected.v1", "slot_beyond_horizon"),
        ),
        "reused id": (_bytes(reused_id), ("answer", "microhub.booking.confirmed.v1", "")),
        "reused id, other source": (
            _bytes(reused_id_elsewhere),
            ("answer", "microhub.booking.confirmed.v1", ""),  # the slot's second dock
        ),
        "resent": (_bytes(resent), ("answer", "microhub.booking.rejected.v1", "slot_docks_full")),
        "resent again": (
            _bytes(resent),
            ("answer", "microhub.booking.rejected.v1", "slot_docks_full"),
        ),
    }
    offsets: dict[int, str] = {}
    for name, (value, _expected) in probes.items():
        metadata = await carrier.producer.send_and_wait(
            carrier.prefix + "microhub.booking.commands.v1",
            value,
            key=TEST_HUB.encode(),
            headers=[("content-type", b"application/json")]
            if name.endswith("said to be")
            else None,
        )
        offsets[metadata.offset] = name
    # and 1.1 MB that Kafka takes because it compresses to a few kB
    raw_huge = _bytes(huge)
    assert len(gzip.compress(raw_huge)) < 100_000
    producer = AIOKafkaProducer(
        bootstrap_servers=booking_settings.bootstrap_list(),
        compression_type="gzip",
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        metadata = await producer.send_and_wait(
            carrier.prefix + "microhub.booking.commands.v1", raw_huge, key=TEST_HUB.encode()
        )
    finally:
        await producer.stop()
    offsets[metadata.offset] = "1.1 MB"
    probes["1.1 MB"] = (raw_huge, ("dlq", "too_large"))

    final = await carrier.request(
        "valid-after-the-probes", hub_id=TEST_HUB, slot_start=SLOT + timedelta(hours=1), time=NOW
    )
    await outcomes.wait_for(
        lambda r: any(e.get("causationid") == final["id"] for e in r.events),
        what="the answer to the valid command after the probes",
        timeout=60,
    )
    dlq_topic = booking_settings.topic("microhub.booking.commands.v1.dlq")
    async with TopicReader(booking_settings.bootstrap_list(), dlq_topic) as dlq:
        await drained(booking, outcomes)
        await drained(booking, dlq)
        dead = {}
        for record in dlq.records:
            headers = {k: v.decode() for k, v in record.headers}
            name = offsets[int(headers["x-microhub-original-offset"])]
            assert name not in dead, f"{name} dead-lettered twice"
            dead[name] = headers["x-microhub-error-reason"]

    answers: dict[str, list[dict[str, Any]]] = {}
    for event in outcomes.events:
        answers.setdefault(event["data"]["carrier_reference"], []).append(event)
    seen = Counter()
    for name, (value, expected) in probes.items():
        if expected[0] == "dlq":
            assert dead.get(name) == expected[1], (name, dead.get(name))
            continue
        assert name not in dead, name
        reference = json.loads(value)["data"]["carrier_reference"]
        seen[reference] += 1
        got = answers.get(reference, [])
        assert len(got) >= seen[reference], (name, got)
        answer = got[seen[reference] - 1]
        assert answer["type"] == expected[1], (name, answer)
        assert answer["data"].get("reason", "") == expected[2], (name, answer)
        assert answer["causationid"] == json.loads(value)["id"]
    # exactly one answer per readable probe: no more than were sent
    for reference, count in seen.items():
        assert len(answers[reference]) == count, (reference, answers[reference])
    assert set(dead) == {n for n, (_, e) in probes.items() if e[0] == "dlq"}
