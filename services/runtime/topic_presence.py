"""Whether a topic exists, as the process's own principal sees it: asked before the HTTP
API publishes a carrier's command, so that a key whose carrier has no commands topic (not
in the carrier registry, or its topics not applied yet) gets a clear answer at once.

Without it the producer waits for the topic's metadata until the publish gives up (ten
seconds), and the caller is told to retry (503) what no retry will ever queue.

Known topics are kept: asking again costs nothing. A topic not known yet is looked up
with one metadata request (librdkafka's admin client on a thread; it creates nothing,
whatever the brokers' ``auto.create.topics.enable``), at most once per ``refresh_seconds``
and one at a time, so a flood of requests for unknown carriers costs the brokers one
request a second. A broker that does not answer is not a missing topic: ``exists``
answers ``None`` and the publish goes on (and answers 503 if the broker stays away).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from confluent_kafka.admin import AdminClient

from services.runtime.acl_admin import admin_config
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


class TopicPresence:
    def __init__(
        self,
        bootstrap: list[str],
        settings: Settings,
        *,
        client_id: str,
        refresh_seconds: float = 1.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._config: dict[str, Any] = admin_config(settings, bootstrap) | {
            "client.id": f"{settings.kafka_client_id}-{client_id}-topics",
            "log_level": 3,
        }
        self._known: set[str] = set()
        self._refresh_seconds = refresh_seconds
        self._timeout_seconds = timeout_seconds
        self._looked_at = float("-inf")  # monotonic time of the last metadata answer
        self._lock = asyncio.Lock()

    async def exists(self, topic: str) -> bool | None:
        """True or False as the brokers last said (asked now if ``topic`` is not known and
        the last answer is older than ``refresh_seconds``); None when they did not answer."""
        if topic in self._known:
            return True
        async with self._lock:
            if topic in self._known:
                return True
            if time.monotonic() - self._looked_at < self._refresh_seconds:
                return False
            try:
                names = await asyncio.to_thread(self._list_topics)
            except Exception as exc:  # the broker's problem, not the caller's
                log.warning("could not list the topics: %s", exc)
                return None
            self._known = names
            self._looked_at = time.monotonic()
            return topic in names

    def forget(self, topic: str) -> None:
        """A publish on ``topic`` failed: look it up again next time (it may be gone)."""
        self._known.discard(topic)

    def _list_topics(self) -> set[str]:
        # a client per lookup (at most one a second): nothing is left connecting to a
        # broker after the process's Kafka is gone, and there is nothing to close
        admin = AdminClient(self._config)
        metadata = admin.list_topics(timeout=self._timeout_seconds)
        return {name for name, t in metadata.topics.items() if t.error is None}
