"""Waiting for a state instead of sleeping for a time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Predicate = Callable[[], bool | Awaitable[bool]]


async def eventually(
    predicate: Predicate,
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.02,
    describe: Callable[[], Any] | None = None,
) -> None:
    """Return as soon as ``predicate()`` (sync or async) is true; fail after ``timeout``
    seconds naming ``what`` was awaited (and ``describe()``, what was seen instead)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            seen = f"; seen: {describe()}" if describe is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{seen}")
        await asyncio.sleep(interval)
