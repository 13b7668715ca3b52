"""In-process fan-out of dispatch queue changes to live viewers (SSE clients).

The handlers publish after their transaction commits; each connected client has its own
bounded queue. A client too slow to keep up is not allowed to grow memory: its queue is
emptied and it is told to resync (it then reloads the snapshot)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

Changes = list[dict[str, Any]]


class QueueFeed:
    def __init__(self, *, max_backlog: int = 100) -> None:
        self.max_backlog = max_backlog
        self._subscribers: dict[str, set[asyncio.Queue[Changes]]] = defaultdict(set)
        self.published = 0

    def subscribe(self, hub_id: str) -> asyncio.Queue[Changes]:
        queue: asyncio.Queue[Changes] = asyncio.Queue(maxsize=self.max_backlog)
        self._subscribers[hub_id].add(queue)
        return queue

    def unsubscribe(self, hub_id: str, queue: asyncio.Queue[Changes]) -> None:
        self._subscribers[hub_id].discard(queue)
        if not self._subscribers[hub_id]:
            self._subscribers.pop(hub_id, None)

    def subscribers(self, hub_id: str) -> int:
        return len(self._subscribers.get(hub_id, ()))

    def publish(self, hub_id: str, changes: Changes) -> None:
        self.published += 1
        for queue in list(self._subscribers.get(hub_id, ())):
            try:
                queue.put_nowait(changes)
            except asyncio.QueueFull:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait([{"kind": "resync"}])
