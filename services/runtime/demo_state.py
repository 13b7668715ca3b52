"""Where a running ``microhub demo`` is: its lock file (``<data dir>/demo.lock``), which
also says its process, address and data.

The demo holds an exclusive ``flock`` on the file for as long as it runs, so a second
demo refuses to start before it touches anything, and the other commands (``microhub
queue``, ``microhub report``) find the demo's server and databases. The lock goes with
the process, also when it is killed: a stale file is no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

LOCK_NAME = "demo.lock"
DEMO_DIR = "demo"


@dataclass
class DemoState:
    pid: int
    data_dir: str
    started: str
    url: str | None = None


class DemoRunning(RuntimeError):
    def __init__(self, state: DemoState | None, path: Path) -> None:
        self.state = state
        where = f" (pid {state.pid}, {state.url or 'starting'})" if state else ""
        data = state.data_dir if state else str(path.parent / DEMO_DIR)
        super().__init__(
            f"another microhub demo is running{where}; its data in {data} is left as it is. "
            "Stop it first (Ctrl-C in its terminal), or give this one another "
            "MICROHUB_DATA_DIR and MICROHUB_HTTP_PORT"
        )


def _read(handle: IO[str]) -> DemoState | None:
    handle.seek(0)
    try:
        return DemoState(**json.loads(handle.read() or "null"))
    except (TypeError, ValueError):
        return None


class DemoLock:
    """The running demo's claim on ``data_dir`` (the lock file sits beside its data)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self.state = DemoState(
            pid=os.getpid(),
            data_dir=str(data_dir / DEMO_DIR),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._handle: IO[str] | None = None

    def acquire(self) -> DemoLock:
        """Take the lock or raise :class:`DemoRunning` (nothing else touched)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # held while the demo runs
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            state = _read(handle)
            handle.close()
            raise DemoRunning(state, self.path) from None
        self._handle = handle
        self._write()
        return self

    def update(self, *, url: str) -> None:
        self.state.url = url
        self._write()

    def _write(self) -> None:
        assert self._handle is not None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(asdict(self.state)))
        self._handle.flush()

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def running_demo(data_dir: Path) -> DemoState | None:
    """The demo running on ``data_dir`` (the settings' data dir), or None."""
    path = data_dir / LOCK_NAME
    try:
        handle = open(path, encoding="utf-8")  # closed below
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(handle)
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None  # a file left by a demo that was killed: no lock, no demo


def demo_data_dir(data_dir: Path) -> Path:
    """Where the demo keeps its databases and reports (``.microhub/demo``)."""
    return data_dir / DEMO_DIR
