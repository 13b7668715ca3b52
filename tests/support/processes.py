"""`microhub` subprocesses for tests: an embedded Kafka cluster in its own process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

MICROHUB = str(Path(sys.executable).parent / "microhub")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any MICROHUB_ variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROHUB_")}
    return env | {f"MICROHUB_{k.upper()}": v for k, v in settings.items()}


@asynccontextmanager
async def embedded_kafka_process(prefix: str) -> AsyncIterator[list[str]]:
    """`microhub kafka embedded` (topics file applied with ``prefix``); yields its
    bootstrap list; SIGTERM on exit, which must end it with status 0."""
    process = await asyncio.create_subprocess_exec(
        MICROHUB,
        "kafka",
        "embedded",
        env=clean_env(kafka_topic_prefix=prefix),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        bootstrap = line.decode().strip().split(",")
        assert all(re.fullmatch(r"127\.0\.0\.1:\d+", b) for b in bootstrap), line
        yield bootstrap
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
