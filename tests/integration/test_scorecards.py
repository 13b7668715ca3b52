"""Scorecards and the no-show rule (issue 16) over a real Kafka, on PostgreSQL and SQLite:
a day at a hub with a no-show rule, lived in event time by two carriers; the carrier who
missed a booking is held to the shorter horizon (with the rate and the limit in the
refusal), the other is not; ``GET /v1/scorecards`` answers the hand count of that day,
and shows a carrier its own row only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from services import web
from services.booking.domain import booking_id_for
from services.booking.service import BookingService
from services.runtime.auth import ApiKeys
from services.runtime.http import create_app
from services.runtime.settings import Settings
from tests.integration.conftest import TEST_CARRIERS
from tests.integration.test_booking_answers import answered
from tests.integration.test_booking_http import KEYS, auth, body, client
from tests.support.carrier import Carrier, TopicReader, monday_after
from tests.support.gateway import write_carriers
from tests.support.hubs import TEST_HUB, hub_config, write_catalogue

__all__ = ["client"]  # the fixture

BERLIN = ZoneInfo("Europe/Berlin")
RULE = {
    "max_no_show_rate": 0.2,
    "window_days": 30,
    "min_bookings": 4,
    "limited_horizon_days": 2,
}


def scenario_day() -> datetime:
    """A Monday in the future early enough in its month that it and the five days after
    it are one month (midnight, Berlin)."""
    monday = monday_after(datetime.now(UTC))
    while monday.day > 20:
        monday += timedelta(days=7)
    return datetime(monday.year, monday.month, monday.day, tzinfo=BERLIN)


DAY = scenario_day()
MONTH = f"{DAY:%Y-%m}"


def local(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    """A Berlin wall-clock time on the scenario day (or ``days`` after), as UTC."""
    return (DAY + timedelta(days=days)).replace(hour=hour, minute=minute).astimezone(UTC)


@pytest.fixture
def booking_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test hub with a no-show rule: above 20 % of at least 4 bookings in 30 days, a
    carrier may book 2 days ahead instead of 14."""
    catalogue = write_catalogue(tmp_path / "hubs.yaml", hub_config(no_show_rule=RULE))
    # the registry too: the HTTP API's commands go through the gateway, which knows them
    carriers = write_carriers(tmp_path / "carriers.yaml", *TEST_CARRIERS)
    return settings.model_copy(update={"hubs_file": catalogue, "carriers_file": carriers})


@pytest.fixture
async def bolt(booking_settings: Settings) -> AsyncIterator[Carrier]:
    async with Carrier(
        booking_settings.bootstrap_list(),
        prefix=booking_settings.kafka_topic_prefix,
        carrier_id="bolt",
    ) as c:
        yield c


async def answer(outcomes: TopicReader, sent: Any) -> dict[str, Any]:
    [reply] = await answered(outcomes, await sent)
    return reply


async def book(outcomes: TopicReader, who: Carrier, reference: str, slot: datetime, time: datetime):
    reply = await answer(
        outcomes, who.request(reference, hub_id=TEST_HUB, slot_start=slot, time=time)
    )
    assert reply["type"] == "microhub.booking.confirmed.v1", reply
    return reply


async def scorecards(client: httpx.AsyncClient, key: str, **params: str) -> httpx.Response:
    query = {"hub": TEST_HUB, "month": MONTH, **params}
    return await client.get("/v1/scorecards", params=query, headers=auth(key))


async def test_a_day_of_two_carriers_scored_and_the_one_who_missed_is_held_nearer(
    booking: BookingService,
    carrier: Carrier,
    bolt: Carrier,
    outcomes: TopicReader,
    client: httpx.AsyncClient,
) -> None:
    acme = carrier
    start = local(6)
    for reference, hour in (("a", 9), ("b", 10), ("c", 11), ("d", 12), ("f", 13), ("g", 16)):
        await book(outcomes, acme, reference, local(hour), start)
    await book(outcomes, bolt, "e", local(9), start)

    async def check_in(who: Carrier, reference: str, at: datetime) -> None:
        reply = await answer(outcomes, who.check_in(reference, hub_id=TEST_HUB, time=at))
        assert reply["type"] == "microhub.booking.consignment_checked_in.v1", reply

    async def cancel(reference: str, at: datetime, *, late: bool) -> None:
        reply = await answer(outcomes, acme.cancel(reference, hub_id=TEST_HUB, time=at))
        assert reply["data"]["late"] is late, reply

    await cancel("g", local(6, 30), late=False)  # the cutoff is 2 h before 16:00
    await check_in(acme, "a", local(8, 50))  # before 09:00: on time
    await check_in(bolt, "e", local(8, 55))
    await check_in(acme, "b", local(10, 5))  # after 10:00: late
    await cancel("d", local(11), late=True)  # after 10:00, the cutoff of 12:00
    moved = await answer(
        outcomes, acme.reschedule("f", hub_id=TEST_HUB, slot_start=local(15), time=local(12))
    )
    assert moved["data"]["late"] is True and moved["data"]["moves"] == 1
    # nobody came for c (11:00-12:00): a no-show once event time passes 12:30
    await check_in(acme, "f", local(14, 55))
    [no_show] = outcomes.of_type("no_show.v1")
    assert no_show["data"]["carrier_reference"] == "c"

    # acme missed 1 of its 4 settled bookings (25 % > 20 %): 2 days ahead at most
    far = local(10, days=5)
    refused = await answer(
        outcomes, acme.request("far", hub_id=TEST_HUB, slot_start=far, time=local(17))
    )
    assert refused["type"] == "microhub.booking.command_rejected.v2", refused
    assert refused["data"]["reason"] == "horizon_limited_no_shows"
    message = refused["data"]["message"]
    assert "1 of its last 4" in message and "25.0%" in message and "20.0%" in message
    await book(outcomes, acme, "near", local(19), local(17, 1))  # within the 2 days
    moving_far = await answer(
        outcomes, acme.reschedule("near", hub_id=TEST_HUB, slot_start=far, time=local(17, 2))
    )
    assert moving_far["data"]["reason"] == "horizon_limited_no_shows", moving_far
    await book(outcomes, bolt, "far", far, local(17, 3))  # bolt came: its horizon is whole
    # the refused request was not stored: the same reference books a nearer slot
    await book(outcomes, acme, "far", local(18), local(17, 4))

    response = await scorecards(client, "k-op")
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["hub_id"] == TEST_HUB and page["month"] == MONTH and page["final"] is False
    rows = {row["carrier_id"]: row for row in page["scorecards"]}
    assert set(rows) == {"acme", "bolt"}
    # acme: a, f on time; b late; c no-show; g cancelled; d cancelled late; near, far to come
    assert rows["acme"] == {
        "carrier_id": "acme",
        "hub_id": TEST_HUB,
        "month": MONTH,
        "bookings": 8,
        "on_time_check_ins": 2,
        "late_check_ins": 1,
        "no_shows": 1,
        "cancellations": 1,
        "late_cancellations": 1,
        "pending": 2,
        "reschedules": 1,
        "late_reschedules": 1,
        "on_time_rate": pytest.approx(2 / 3),
        "no_show_rate": pytest.approx(1 / 4),
        "late_cancellation_rate": pytest.approx(1 / 8),
        "late_reschedule_rate": 1.0,
    }
    bolt_row = rows["bolt"]
    assert (bolt_row["bookings"], bolt_row["on_time_check_ins"], bolt_row["pending"]) == (2, 1, 1)
    assert bolt_row["no_shows"] == 0 and bolt_row["no_show_rate"] == 0.0

    mine = (await scorecards(client, "k-acme")).json()
    assert [row["carrier_id"] for row in mine["scorecards"]] == ["acme"]
    assert mine["scorecards"][0] == page["scorecards"][0]


async def test_who_may_read_which_scorecards(
    booking: BookingService,
    carrier: Carrier,
    bolt: Carrier,
    outcomes: TopicReader,
    client: httpx.AsyncClient,
) -> None:
    await book(outcomes, carrier, "mine", local(9), local(6))
    await book(outcomes, bolt, "theirs", local(10), local(6))

    assert (
        await client.get("/v1/scorecards", params={"hub": TEST_HUB, "month": MONTH})
    ).status_code == 401
    operator = (await scorecards(client, "k-op")).json()
    assert sorted(r["carrier_id"] for r in operator["scorecards"]) == ["acme", "bolt"]
    admin = (await scorecards(client, "k-admin")).json()
    assert admin["scorecards"] == operator["scorecards"]
    one = (await scorecards(client, "k-op", carrier_id="bolt")).json()
    assert [r["carrier_id"] for r in one["scorecards"]] == ["bolt"]

    # a carrier: its own row, never another's
    acme = (await scorecards(client, "k-acme")).json()
    assert [(r["carrier_id"], r["bookings"]) for r in acme["scorecards"]] == [("acme", 1)]
    snooping = await scorecards(client, "k-acme", carrier_id="bolt")
    assert snooping.status_code == 403 and "its own" in snooping.json()["detail"]
    nothing = (await scorecards(client, "k-other")).json()
    assert nothing["scorecards"] == []

    # another hub's operator, a city official: refused; an unknown hub, a wrong month
    elsewhere = await scorecards(client, "k-op-elsewhere")
    assert elsewhere.status_code == 403 and "not test-hub" in elsewhere.json()["detail"]
    assert (await scorecards(client, "k-official")).status_code == 403
    missing = await scorecards(client, "k-admin", hub="no-such-hub")
    assert missing.status_code == 404 and "no hub" in missing.json()["detail"]
    for month in ("2027-13", "2027-1", "last month", ""):
        assert (await scorecards(client, "k-op", month=month)).status_code == 422, month


@pytest.fixture
def people_app(booking: BookingService, tmp_path: Path) -> Any:
    """The whole HTTP app for people: the pages and the booking API."""
    keys = tmp_path / "people.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"key": k, "scope": s} for k, s in KEYS.items()]}))
    routers = [*booking.http_routers(), *web.routers()]
    app = create_app(keys=ApiKeys.load(keys), routers=routers, session_secret="test-secret")
    web.install(app)
    return app


@pytest.fixture
async def browser(people_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A person's browser on it, signed in with a session cookie (the page's script calls
    the API with it)."""
    transport = httpx.ASGITransport(app=people_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_the_operators_page_shows_the_hubs_scorecards_to_its_operators_only(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader, browser: httpx.AsyncClient
) -> None:
    await book(outcomes, carrier, "seen", local(9), local(6))
    page = f"/ui/hubs/{TEST_HUB}/scorecards?month={MONTH}"
    assert (await browser.get(page)).status_code == 303  # off to sign in first
    signed = await browser.post("/ui/sign-in", data={"key": "k-op", "next": page})
    assert signed.status_code == 303 and signed.headers["location"] == page
    shell = await browser.get(page)
    assert shell.status_code == 200 and "/ui/static/scorecards.js" in shell.text
    assert "k-op" not in shell.text and MONTH in shell.text
    script = await browser.get("/ui/static/scorecards.js")
    assert script.status_code == 200 and "/v1/scorecards" in script.text
    # what the script reads, with the page's session and no key
    data = await browser.get("/v1/scorecards", params={"hub": TEST_HUB, "month": MONTH})
    assert data.status_code == 200
    assert [(r["carrier_id"], r["pending"]) for r in data.json()["scorecards"]] == [("acme", 1)]
    assert "Carrier scorecards" in (await browser.get("/ui/")).text
    assert (await browser.get(f"/ui/hubs/{TEST_HUB}/scorecards?month=May")).status_code == 400

    for key in ("k-op-elsewhere", "k-acme"):  # another hub's desk, a carrier: not theirs
        await browser.post("/ui/sign-out")
        await browser.post("/ui/sign-in", data={"key": key})
        refused = await browser.get(page)
        assert refused.status_code == 403 and "does not operate" in refused.text


async def test_over_http_a_carrier_held_nearer_is_told_why(
    booking: BookingService, carrier: Carrier, outcomes: TopicReader, client: httpx.AsyncClient
) -> None:
    """Event time is the wall clock's here: a week or two ago acme missed 2 of 4 bookings
    (over Kafka, at that time); the HTTP API's request now is refused with the reason."""
    past = monday_after(datetime.now(UTC) - timedelta(days=14)).astimezone(BERLIN)

    def then(hour: int, minute: int = 0) -> datetime:
        return past.replace(hour=hour, minute=minute).astimezone(UTC)

    for reference, hour in (("w1", 9), ("w2", 10), ("w3", 11), ("w4", 12)):
        await book(outcomes, carrier, reference, then(hour), then(6))
    for reference, hour in (("w1", 9), ("w2", 10)):
        checked = await answer(
            outcomes, carrier.check_in(reference, hub_id=TEST_HUB, time=then(hour))
        )
        assert checked["type"].endswith("consignment_checked_in.v1"), checked

    now = datetime.now(UTC)
    near, far = (
        (now + timedelta(days=d)).replace(hour=9, minute=0, second=0, microsecond=0) for d in (1, 5)
    )
    far_body = body("web-far", slot_start=far.isoformat())
    refused = await client.post("/v1/bookings?wait=10", json=far_body, headers=auth("k-acme"))
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert detail["reason"] == "horizon_limited_no_shows"
    assert "2 of its last 4" in detail["message"] and "50.0%" in detail["message"]
    gone = await client.get(
        f"/v1/bookings/{booking_id_for('acme', 'web-far')}", headers=auth("k-acme")
    )
    assert gone.status_code == 404  # nothing stored
    near_body = body("web-far", slot_start=near.isoformat())  # the same reference, nearer
    accepted = await client.post("/v1/bookings?wait=10", json=near_body, headers=auth("k-acme"))
    assert accepted.status_code == 202 and accepted.json()["status"] == "confirmed", accepted.text
