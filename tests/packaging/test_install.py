"""What the image gets: `pip install .` without extras into a fresh virtualenv (from
PyPI, as infra/Dockerfile does). Every module under services/ and contracts/ imports
there, every entry point loads, every source and data file is installed, the CLI answers
(`microhub --help`, `microhub queue --help`) and the installed migrations run.

The development virtualenv has the test extras too, so a runtime import that only a
test dependency satisfies (httpx for `microhub queue`, once) or a data file missing from
package-data goes unnoticed there; here it fails."""

from __future__ import annotations

import asyncio
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import contracts
import services
from services.app.registry import service_names

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("services", "contracts")
# bounded: about a minute here with nothing cached (ortools and matplotlib are the bulk)
INSTALL_TIMEOUT_SECONDS = 900

# runs inside the fresh virtualenv, from a directory that holds no sources
PROBE = """
import importlib, json, pkgutil
from importlib.metadata import distribution
imported = []
for top in ("services", "contracts"):
    package = importlib.import_module(top)
    imported.append(top)
    for module in pkgutil.walk_packages(package.__path__, top + "."):
        importlib.import_module(module.name)
        imported.append(module.name)
scripts = [e for e in distribution("microhub").entry_points if e.group == "console_scripts"]
for script in scripts:
    script.load()
print(json.dumps({
    "root": str(importlib.import_module("services").__path__[0]),
    "modules": imported,
    "scripts": [s.name for s in scripts],
}))
"""


def repository_modules() -> set[str]:
    found = set(SOURCES)
    for package in (services, contracts):
        found |= {m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")}
    return found


def source_files() -> set[str]:
    """Every file under services/ and contracts/ (paths relative to the repository)."""
    return {
        str(path.relative_to(ROOT))
        for top in SOURCES
        for path in (ROOT / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    shown = " ".join(a if len(a) < 120 else a[:40].strip() + " …" for a in args)
    assert done.returncode == 0, f"{shown} (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def install_and_probe(tmp: Path) -> dict:
    source = tmp / "src"
    for top in SOURCES:
        shutil.copytree(ROOT / top, source / top, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    # nothing from the development environment may leak in
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MICROHUB_", "PYTHON", "VIRTUAL_ENV"))
    }
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp, env=env, timeout=120)
    python, microhub = str(venv / "bin" / "python"), str(venv / "bin" / "microhub")
    run(
        [python, "-m", "pip", "install", "--quiet", str(source)],
        cwd=tmp,
        env=env,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    probe = json.loads(run([python, "-c", PROBE], cwd=elsewhere, env=env, timeout=300))
    probe["help"] = run(
        [microhub, "--help"], cwd=elsewhere, env=env | {"COLUMNS": "200"}, timeout=120
    )
    probe["queue_help"] = run(
        [microhub, "queue", "--help"], cwd=elsewhere, env=env | {"COLUMNS": "200"}, timeout=120
    )
    data = tmp / "data"
    run(
        [microhub, "migrate"],
        cwd=elsewhere,
        env=env | {"MICROHUB_DATA_DIR": str(data)},
        timeout=300,
    )
    probe["databases"] = sorted(p.name for p in data.glob("*.db"))
    probe["venv"] = str(venv)
    return probe


async def test_the_package_without_extras_has_everything_it_imports_and_ships(
    tmp_path: Path,
) -> None:
    probe = await asyncio.to_thread(install_and_probe, tmp_path)

    installed = Path(probe["root"]).parent
    assert installed.is_relative_to(probe["venv"]), installed  # not the repository's copy
    assert set(probe["modules"]) == repository_modules()
    assert probe["scripts"] == ["microhub"]
    missing = sorted(f for f in source_files() if not (installed / f).is_file())
    assert missing == [], f"not installed (package-data in pyproject.toml?): {missing}"

    assert "Usage: microhub" in probe["help"] and "serve" in probe["help"]
    assert "Usage: microhub queue" in probe["queue_help"] and "--hub" in probe["queue_help"]
    # `microhub migrate` from the installed package: every service's migrations shipped
    assert probe["databases"] == sorted(f"{name}.db" for name in service_names())
