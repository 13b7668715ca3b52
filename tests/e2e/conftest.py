"""End-to-end fixtures: the demo as a subprocess (run once per session, shared by the
tests that compare against it) and Debian's Chromium for the browser tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MICROHUB = str(Path(sys.executable).parent / "microhub")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
DAYS, SEED = 3, 11


@dataclass
class DemoRun:
    returncode: int
    output: str
    data_dir: Path
    summary: dict[str, Any]


def base_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROHUB_")}
    env.update({"MICROHUB_DATA_DIR": str(tmp), "MICROHUB_HTTP_PORT": "0", "COLUMNS": "100"})
    return env


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    tmp = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [MICROHUB, "demo", "--days", str(DAYS), "--seed", str(SEED), "--no-serve"],
        cwd=tmp,
        env=base_env(tmp),
        capture_output=True,
        text=True,
        timeout=600,
    )
    data_dir = tmp / "demo"
    summary_file = data_dir / "reports" / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return DemoRun(proc.returncode, proc.stdout + proc.stderr, data_dir, summary)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed here if missing (never `playwright install`)."""
    if not CHROMIUM.exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900
        )
    assert CHROMIUM.exists(), "apt-get installed chromium but /usr/bin/chromium is missing"
    ARTIFACTS.mkdir(exist_ok=True)
    return CHROMIUM


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
