"""Webhooks for carriers without Kafka: the events of the carrier's own topic, POSTed to the
URLs it subscribed, signed per the Standard Webhooks scheme (standardwebhooks.com).

Each request carries ``webhook-id`` (the event's id: the same on every retry, so the
receiver can drop a repeat), ``webhook-timestamp`` (seconds since the epoch, when it was
sent: the receiver refuses old ones, so a captured request cannot be replayed later) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` with the
subscription's secret; while a rotated-out secret is still valid, a second signature with
it follows (space-separated), so the receiver may switch secrets at its own pace.

Deliveries are rows written in the egress's transaction (store.webhook_deliveries). The
sender takes the due ones (a lease, so two gateway processes never send one at the same
time), POSTs them, and on anything but a 2xx tries again later (``webhook_retry_seconds``)
until the schedule runs out: then the delivery is failed, and the carrier's delivery log
shows it. A stop or crash loses nothing: a stopped sender records what the receivers
answered and gives the rest back at once (a restart goes on where it stopped); a leased
delivery whose sender died is taken again when its lease runs out. So delivery is at least
once: a request whose answer the sender never saw (a crash or a stop in the middle of it, a
timeout) is sent again, with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.gateway import store
from services.runtime.db import writing

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
LEASE = timedelta(seconds=60)  # at least; longer when a pass may take longer (lease_for)
BATCH = 50
PARALLEL = 8

d = store.webhook_deliveries.c
w = store.webhook_subscriptions.c

# A pass's statements, built once with their values as parameters: the sender polls every
# second and on every notify, and building a select anew costs more CPU than running it
# (services/booking/ledger.py; the gateway's figures in docs/booking-throughput.md).
_DUE_IDS = (
    select(d.id)
    .where(
        d.status == "pending",
        d.next_attempt_at <= bindparam("now"),
        or_(d.lease_until.is_(None), d.lease_until < bindparam("now")),
    )
    .order_by(d.id)
    .limit(BATCH)
    .with_for_update(skip_locked=True)
)
_IDS = d.id.in_(bindparam("ids", expanding=True))
_LEASE = update(store.webhook_deliveries).where(_IDS).values(lease_until=bindparam("b_until"))
_CLAIMED = (
    select(
        d.id,
        d.subscription_id,
        d.event_id,
        d.payload,
        d.attempts,
        w.url,
        w.secret,
        w.previous_secret,
        w.previous_until,
        w.active,
    )
    .join(store.webhook_subscriptions, w.id == d.subscription_id)
    .where(_IDS)
    .order_by(d.id)
)
# leases given back: not one another sender has taken since (a later lease)
_GIVEN_BACK = (
    update(store.webhook_deliveries)
    .where(_IDS, d.status == "pending", d.lease_until <= bindparam("b_until"))
    .values(lease_until=None)
)
# an attempt's outcome: finished (delivered or failed for good), or to be tried again
_ATTEMPTED = (
    update(store.webhook_deliveries)
    .where(d.id == bindparam("b_id"), d.status == "pending")
    .values(
        attempts=bindparam("b_attempts"),
        last_status=bindparam("b_status"),
        last_error=bindparam("b_error"),
        lease_until=None,
    )
)
_FINISHED = _ATTEMPTED.values(status=bindparam("b_outcome"), finished_at=bindparam("b_at"))
_RETRY = _ATTEMPTED.values(next_attempt_at=bindparam("b_at"))


# --- signing ---------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets_),
    }


# --- targets ---------------------------------------------------------------------------


class TargetRefused(ValueError):
    """A webhook URL the platform will not call."""


def check_url(url: str, *, allow_private: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("a webhook URL is https://host/path")
    if parts.scheme == "http" and not allow_private:
        raise TargetRefused("webhooks are sent over https only")
    if parts.username or parts.password:
        raise TargetRefused("no credentials in the URL: the signature authenticates us")
    if len(url) > 2000:
        raise TargetRefused("the URL is too long")
    return url


async def check_address(url: str, *, allow_private: bool) -> None:
    """Refuse a target that resolves to a loopback, private, link-local or otherwise
    internal address: a carrier must not make the platform call into its own network."""
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise TargetRefused(f"{host} resolves to {address}, which is not a public address")


# --- the sender ------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    id: int
    subscription_id: str
    event_id: str
    payload: bytes | None
    attempts: int
    url: str
    secret: str
    previous_secret: str | None
    previous_until: datetime | None
    active: bool


def lease_for(timeout: float) -> timedelta:
    """How long a pass holds what it claimed: longer than the pass can take (BATCH
    deliveries, PARALLEL at a time, each given up after ``timeout``), or another gateway
    process would take and send again deliveries this one has yet to answer."""
    rounds = -(-BATCH // PARALLEL)
    return max(LEASE, timedelta(seconds=rounds * timeout + 30))


class WebhookSender:
    """Sends the due deliveries of one gateway database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retry_seconds: Sequence[float],
        timeout: float,
        allow_private: bool,
        poll_seconds: float = 1.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.engine = engine
        self.retry_seconds = list(retry_seconds)
        self.timeout = timeout
        self.lease = lease_for(timeout)
        self.allow_private = allow_private
        self.poll_seconds = poll_seconds
        self._client = client
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # stop() says so by this flag too: Python 3.11's asyncio.wait_for loses a
        # cancellation that arrives as the wait completes (a notify), and the loop would
        # run on with stop() waiting for it (the same fix as dispatch/changes.py)
        self._stopping = False
        self.sent = 0
        self.failed_attempts = 0

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                done = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook sender: a pass failed")
                done = 0
            if done < BATCH:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                except TimeoutError:
                    pass

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # no redirects: a 3xx is an answer, not an invitation to call elsewhere
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def send_due(self, now: datetime | None = None) -> int:
        """Send what is due now; returns how many deliveries were attempted."""
        now = now or datetime.now(UTC)
        due = await self._claim(now)
        if not due:
            return 0
        limit = asyncio.Semaphore(PARALLEL)
        answered: list[tuple[Due, int | None, str | None]] = []

        async def one(item: Due) -> None:
            async with limit:
                try:
                    # the whole attempt (resolving the host too), not each step of it: the
                    # pass must end within its lease
                    async with asyncio.timeout(self.timeout):
                        status, error = await self._post(item)
                except TimeoutError:
                    status, error = None, f"no answer within {self.timeout:g} s"
                except Exception as exc:  # an attempt that failed, not a lost batch
                    log.exception("webhook delivery %s: the attempt failed", item.id)
                    status, error = None, f"{type(exc).__name__}: {exc}"[:500]
            answered.append((item, status, error))

        try:
            await asyncio.gather(*(one(item) for item in due))
        finally:
            # Also when the sender is stopped halfway (cancelled): what the receivers have
            # answered is recorded, so an accepted delivery is not sent again, and the
            # deliveries not answered are given back at once, not when the lease runs out
            # (the next sender, e.g. after a restart, takes them right away).
            answered_ids = {item.id for item, _, _ in answered}
            unanswered = [item.id for item in due if item.id not in answered_ids]
            recording = asyncio.ensure_future(
                self._record(list(answered), unanswered, leased_until=now + self.lease)
            )
            try:
                await asyncio.shield(recording)
            except asyncio.CancelledError:
                await recording  # a stop during the recording waits for it: it is short
                raise
        return len(due)

    async def _claim(self, now: datetime) -> list[Due]:
        async with writing(self.engine), AsyncSession(self.engine) as session, session.begin():
            ids = list((await session.execute(_DUE_IDS, {"now": now})).scalars())
            if not ids:
                return []
            await session.execute(_LEASE, {"ids": ids, "b_until": now + self.lease})
            rows = await session.execute(_CLAIMED, {"ids": ids})
            return [
                Due(
                    r.id,
                    r.subscription_id,
                    r.event_id,
                    r.payload,
                    r.attempts,
                    r.url,
                    r.secret,
                    r.previous_secret,
                    r.previous_until,
                    bool(r.active),
                )
                for r in rows
            ]

    async def _post(self, item: Due) -> tuple[int | None, str | None]:
        """(the receiver's status, why it failed); a 2xx status with no error is success."""
        if not item.active:
            return None, "the subscription was removed"
        if item.payload is None:
            return None, "the event was purged (personal data retention)"
        try:
            check_url(item.url, allow_private=self.allow_private)
            await check_address(item.url, allow_private=self.allow_private)
        except TargetRefused as exc:
            return None, str(exc)
        now = datetime.now(UTC)
        keys = [item.secret]
        if item.previous_secret and item.previous_until and item.previous_until > now:
            keys.append(item.previous_secret)
        sent = headers(keys, item.event_id, int(now.timestamp()), item.payload)
        try:
            response = await self.client().post(item.url, content=item.payload, headers=sent)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    async def _record(
        self,
        results: list[tuple[Due, int | None, str | None]],
        unanswered: Sequence[int] = (),
        *,
        leased_until: datetime | None = None,
    ) -> None:
        """The attempts' outcomes; ``unanswered``: claimed (the lease until
        ``leased_until``) but not attempted, or the attempt cut short by a stop: their
        leases released, no attempt counted; not a lease another sender has taken since."""
        now = datetime.now(UTC)
        async with writing(self.engine), AsyncSession(self.engine) as session, session.begin():
            if unanswered:
                await session.execute(
                    _GIVEN_BACK,
                    {"ids": list(unanswered), "b_until": leased_until or now + self.lease},
                )
            finished: list[dict[str, Any]] = []
            retried: list[dict[str, Any]] = []
            for item, status, error in results:
                attempts = item.attempts + 1
                values: dict[str, Any] = {
                    "b_id": item.id,
                    "b_attempts": attempts,
                    "b_status": status,
                    "b_error": error,
                }
                if error is None:
                    finished.append(values | {"b_outcome": "delivered", "b_at": now})
                    self.sent += 1
                elif attempts > len(self.retry_seconds) or not item.active or not item.payload:
                    finished.append(values | {"b_outcome": "failed", "b_at": now})
                    self.failed_attempts += 1
                    log.warning("webhook delivery %s failed for good: %s", item.id, error)
                else:
                    wait = timedelta(seconds=self.retry_seconds[attempts - 1])
                    retried.append(values | {"b_at": now + wait})
                    self.failed_attempts += 1
            if finished:
                await session.execute(_FINISHED, finished)
            if retried:
                await session.execute(_RETRY, retried)
