"""`microhub` subprocesses for tests: an embedded Kafka cluster in its own process, and
any command whose output is collected while it runs (`Proc`), and `microhub serve`
processes (`ServeProcess`)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
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


class Proc:
    """A child process whose output is collected by a thread (so its pipe never fills)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # rich may wrap a long line: search the whole output
            if found := re.search(pattern, "".join(self.lines), re.MULTILINE):
                return found
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{' '.join(self.args)}: no {pattern!r} in:\n{''.join(self.lines)}")

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    async def wait_for_async(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """:meth:`wait_for` off the event loop (streams and clients keep running)."""
        return await asyncio.to_thread(self.wait_for, pattern, timeout)

    @property
    def output(self) -> str:
        return "".join(self.lines)


class ServeProcess:
    """`microhub serve <target>` as a child process, its output in ``log``: started and
    awaited until it says it runs, SIGKILLed (a crash) or SIGTERMed (a graceful stop)."""

    def __init__(self, target: str, env: dict[str, str], log: Path) -> None:
        self.target = target
        self.env = env
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float = 90) -> None:
        self.log.write_text("")
        with self.log.open("ab") as sink:
            self.process = await asyncio.create_subprocess_exec(
                MICROHUB, "serve", self.target, env=self.env, stdout=sink, stderr=sink
            )
        deadline = asyncio.get_running_loop().time() + timeout
        while f"{self.target} running" not in self.log.read_text():
            assert self.process.returncode is None, self.log.read_text()
            assert asyncio.get_running_loop().time() < deadline, self.log.read_text()
            await asyncio.sleep(0.05)

    def url(self) -> str:
        """Where its HTTP server answers (from the line it printed when it started)."""
        found = re.search(r"HTTP at\s+(http://\S+)", self.log.read_text())
        assert found, self.log.read_text()
        return found.group(1)

    async def terminate(self, timeout: float = 45) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout=timeout)

    async def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing committed, no goodbye to the group."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
