"""`microhub demo`: the platform on its embedded defaults (embedded Kafka, SQLite under
``.microhub/demo``, one HTTP server), driven by the city simulation over Kafka.

Simulated time runs ahead of the wall clock, so the timers that nudge by wall time (the
no-show sweep, the dispatch wave nudge) are off: only event time decides. Dispatch plans
with the deterministic greedy planner (a time-limited OR-Tools search can end in a
different plan from run to run), so the same seed gives the same report.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.app.platform import Platform
from services.app.registry import service_names, specs
from services.runtime.settings import Settings
from services.simulation import summary as summary_mod
from services.simulation.catalogue import fetch_hubs
from services.simulation.driver import Simulation, next_monday

ADMIN_KEY = "demo-admin"

# What the demo changes from the defaults, and why (see the module docstring). A
# multi-process deployment driven by `microhub simulate` needs the same values to give
# the same results.
DEMO_OVERRIDES = {
    # the public demo keys, and the process says so (no keys file)
    "demo_mode": True,
    # simulated time is not the wall clock: the simulator is the world's clock, so the
    # gateway receives a command at the time its (simulated) sender says
    "ingress_receipt_time": "sender",
    "max_clock_skew_seconds": 0,
    "sweep_interval_seconds": 0,
    "dispatch_wave_nudge_seconds": 0,
    "dispatch_solver_time_limit_seconds": 0,
    "dispatch_wave_interval_minutes": 60,
}
# Speed only, no effect on the results: one embedded broker (a consumer fetches from
# every broker that leads one of its partitions); short long-polls (the embedded mock
# broker answers an empty fetch only after its whole wait, and a record produced
# meanwhile waits for the next fetch: each hop costs up to that. Measured on a 30-day
# run: 20 ms -> 5 ms took the simulation from 66 to 57 s; 2 ms was slower again, the
# empty fetches' CPU outweighing the shorter waits); the relay's fallback poll rarely
# (consumers publish their outbox before they ack); SQLite statements without a thread
# hand-over.
DEMO_TUNING = {
    "kafka_embedded_brokers": 1,
    "kafka_fetch_max_wait_ms": 5,
    "outbox_poll_interval_seconds": 1.0,
    # each demo database has one writing process, its writers queue on db.writing()
    "sqlite_inline_statements": True,
}
# These consume in processes of their own (the machine's other core); the demo's HTTP
# server answers for them from their databases, like `microhub serve api` does.
OWN_PROCESS = ("booking", "reporting")
# Reporting is a projection nobody waits for until the end: it yields the CPU to the
# services and the simulation on the critical path, and catches up when they idle. Its
# consumers long-poll for longer: every empty fetch costs CPU in the client and the
# broker, and nothing waits on reporting's latency until the final settle.
NICENESS = {"reporting": 10}
CHILD_TUNING: dict[str, dict[str, object]] = {"reporting": {"kafka_fetch_max_wait_ms": 200}}


def demo_settings(settings: Settings, data_dir: Path) -> Settings:
    return settings.model_copy(update={"data_dir": data_dir, **DEMO_OVERRIDES, **DEMO_TUNING})


def as_environment(
    settings: Settings, bootstrap: list[str], tuning: dict[str, object] | None = None
) -> dict[str, str]:
    """The environment of a child process that must see what this one sees (with
    speed-only ``tuning`` of its own)."""
    env = dict(os.environ)
    for name in ("data_dir", *DEMO_OVERRIDES, *DEMO_TUNING):
        env[f"MICROHUB_{name.upper()}"] = str(getattr(settings, name))
    for name, value in (tuning or {}).items():
        env[f"MICROHUB_{name.upper()}"] = str(value)
    env["MICROHUB_KAFKA_BOOTSTRAP_SERVERS"] = ",".join(bootstrap)
    env["MICROHUB_HTTP_PORT"] = "0"
    # the children only consume: a free health port each, never one another demo holds
    env["MICROHUB_HEALTH_PORT"] = "0"
    return env


class Child:
    """A `microhub` subprocess of the demo. With ``capture``, its stderr (where the CLI
    prints and logs) is read until it says it runs, then passed through."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self._drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        name: str,
        args: list[str],
        env: dict[str, str],
        *,
        capture: bool = True,
        niceness: int = 0,
    ) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.app.cli",
            *args,
            env=env,
            stderr=asyncio.subprocess.PIPE if capture else None,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
        )
        return cls(name, proc)

    async def wait_for(self, text: str, timeout: float = 120.0) -> None:
        """Until the child prints a line containing ``text``."""
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            while line := await self.proc.stderr.readline():
                if text in line.decode(errors="replace"):
                    # keep reading, or a full pipe would block the child
                    self._drain = asyncio.create_task(self._pass_through())
                    return
                sys.stderr.write(line.decode(errors="replace"))
        raise RuntimeError(f"the {self.name} process ended (exit {await self.proc.wait()})")

    async def _pass_through(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            text = line.decode(errors="replace")
            if text.strip() != "stopping…":
                sys.stderr.write(text)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def simulation_groups() -> tuple[dict[str, str], dict[str, str]]:
    """The consumer groups the simulation waits for, from the services' declarations:
    those whose records cause events another service consumes (the next step depends on
    them), and the rest, projections such as reporting's or the carriers' own topics
    (waited for only before the reports)."""
    consumed = {c.topic.name for spec in specs() for c in spec.consumes}
    driving: dict[str, str] = {}
    projections: dict[str, str] = {}
    for spec in specs():
        for consumes in spec.consumes:
            feeds = any(
                p.topic.name in consumed and (not p.by or consumes.consumer in p.by)
                for p in spec.publishes
            )
            (driving if feeds else projections)[consumes.consumer] = consumes.topic.name
    return driving, projections


async def new_simulation(
    settings: Settings,
    bootstrap: list[str],
    *,
    api_url: str,
    api_key: str,
    days: int,
    seed: int,
    on_day: Callable[[int], None] = lambda _day: None,
) -> Simulation:
    """A simulation of the deployment behind ``api_url``: the hubs it publishes, and the
    consumer groups of the services declared here."""
    start = next_monday(datetime.now(UTC).date())
    hubs = await fetch_hubs(api_url, api_key, start=start, days=days)
    driving, projections = simulation_groups()
    return Simulation(
        settings,
        bootstrap,
        days=days,
        seed=seed,
        start=start,
        hubs=hubs,
        driving_groups=driving,
        projection_groups=projections,
        on_day=on_day,
    )


async def simulate_and_report(
    settings: Settings,
    bootstrap: list[str],
    *,
    api_url: str,
    api_key: str,
    days: int,
    seed: int,
    out_dir: Path,
    console: Console,
) -> dict:
    """Drive a running platform (in this process or not) and write the summary."""
    started = time.monotonic()
    with Progress(
        TextColumn("simulated days"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("days", total=days)
        sim = await new_simulation(
            settings,
            bootstrap,
            api_url=api_url,
            api_key=api_key,
            days=days,
            seed=seed,
            on_day=lambda _d: progress.advance(task),
        )
        console.print(
            f"simulating {days} day(s) from {sim.start:%A %Y-%m-%d}, seed {seed}, "
            f"{len(sim.hubs)} hubs"
        )
        observed = await sim.run()
    reports = await summary_mod.fetch_reports(
        observed, api_url=api_url, api_key=api_key, out_dir=out_dir
    )
    result = summary_mod.as_dict(observed, reports)
    result["seed"], result["days"], result["start"] = seed, days, sim.start.isoformat()
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    (out_dir / "summary.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    summary_mod.print_summary(console, result, f"{days} simulated day(s), seed {seed}")
    console.print(f"reports written to [bold]{out_dir}[/] ({len(reports)} city-month(s))")
    return result


async def run_demo(
    settings: Settings, *, days: int, seed: int, serve: bool, console: Console
) -> int:
    data_dir = settings.data_dir / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = demo_settings(settings, data_dir)
    console.print("[bold]microhub demo[/]: starting embedded Kafka, services and HTTP …")
    from services.web import routers as web_routers

    here = [name for name in service_names() if name not in OWN_PROCESS]
    platform = Platform(settings, extra_routers=web_routers(settings), consuming=here)
    children: list[Child] = []
    try:
        await platform.start()
        assert platform.cluster is not None  # start() starts one when it was given none
        env = as_environment(settings, platform.cluster.bootstrap)
        for name in OWN_PROCESS:
            if name in platform.services:
                child = await Child.start(
                    name,
                    ["serve", name, "--quiet"],
                    as_environment(settings, platform.cluster.bootstrap, CHILD_TUNING.get(name)),
                    niceness=NICENESS.get(name, 0),
                )
                children.append(child)
        # the simulation plans with the hubs the API publishes: the services (and the
        # hub catalogue they load) come first
        for child in children:
            await child.wait_for(" running: ")
        console.print(
            f"  services: {', '.join(platform.services)} "
            f"({', '.join(c.name for c in children) or 'none'} in their own processes); "
            f"HTTP at [link]{platform.base_url}[/]"
        )
        out_dir = data_dir / "reports"
        # the simulation is a client like any other, in its own process
        simulation = await Child.start(
            "simulation",
            [
                "simulate",
                "--bootstrap-servers", ",".join(platform.cluster.bootstrap),
                "--api-url", str(platform.base_url),
                "--api-key", ADMIN_KEY,
                "--days", str(days),
                "--seed", str(seed),
                "--out", str(out_dir),
            ],
            env,
            capture=False,
        )  # fmt: skip
        children.append(simulation)  # (stopped with the others if something fails)
        code = await simulation.proc.wait()
        if code != 0:
            console.print(f"[red]the simulation failed (exit {code})[/]")
            return code
        result = json.loads((out_dir / "summary.json").read_text())
        if serve:
            from services.runtime.cli_common import wait_for_signal

            print_keys(settings, console)
            base = platform.base_url
            console.print(
                f"hub operator: {base}/ui/hubs/ber-westhafen?api_key=demo-operator-ber-westhafen\n"
                f"city official: {base}/ui/cities/berlin?api_key=demo-official-berlin"
                f"&month={result['start'][:7]}\n"
                f"carrier: {base}/ui/carriers/parcelco?api_key=demo-carrier-parcelco\n"
                f"OpenAPI: {base}/docs, AsyncAPI: {base}/ui/asyncapi — Ctrl-C to stop"
            )
            await wait_for_signal()
    finally:
        await asyncio.gather(*(child.stop() for child in children))
        await platform.stop()
    return 0


def print_keys(settings: Settings, console: Console) -> None:
    """The demo's ready-made API keys, for the links printed after the run."""
    import yaml

    from services.runtime.auth import DEMO_KEYS

    path = settings.api_keys_file or DEMO_KEYS
    table = Table(title=f"API keys ({path})")
    table.add_column("key")
    table.add_column("scope")
    table.add_column("who")
    for entry in yaml.safe_load(Path(path).read_text())["keys"]:
        table.add_row(str(entry.get("key", "(sha256 only)")), entry["scope"], entry.get("name", ""))
    console.print(table)
