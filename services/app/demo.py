"""`microhub demo`: the platform on its embedded defaults (embedded Kafka, SQLite under
``.microhub/demo``, one HTTP server), driven by the city simulation over Kafka (simulate.py,
in a child process).

Simulated time is not the wall clock (by default a fixed, complete, past month: the same
run on any day), so the timers that nudge by wall time (the no-show sweep, the dispatch
wave nudge) and the clock-skew check are off: only event time decides. Dispatch plans
with the deterministic greedy planner (a time-limited OR-Tools search can end in a
different plan from run to run), so the same seed gives the same report.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.app.platform import Platform, PortUnavailable
from services.app.registry import service_names
from services.runtime.demo_state import DemoLock, DemoRunning, demo_data_dir
from services.runtime.settings import Settings
from services.simulation.driver import DEFAULT_START, TICK, days_of_month

ADMIN_KEY = "demo-admin"
# After its month the demo keeps the hubs moving at a pace people can watch: wall seconds
# per simulated 2-hour tick (a simulated hour in 1.5 s), for up to LIVE_DAYS days.
LIVE_PACE_SECONDS = 3.0
LIVE_DAYS = 62

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
    # the purge counts the retention on the wall clock: not a simulated month's
    "retention_interval_seconds": 0,
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
    settings: Settings,
    bootstrap: list[str],
    tuning: dict[str, object] | None = None,
    log: Path | None = None,
) -> dict[str, str]:
    """The environment of a child process that must see what this one sees (with
    speed-only ``tuning`` of its own, and its logs to ``log``.log)."""
    env = dict(os.environ)
    env.pop("MICROHUB_LOG_FILE", None)
    if log is not None:
        env["MICROHUB_LOG_FILE"] = str(log.with_suffix(".log"))
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


async def run_demo(
    settings: Settings,
    *,
    days: int | None = None,
    seed: int,
    serve: bool,
    console: Console,
    start: date = DEFAULT_START,
    live_pace: float = LIVE_PACE_SECONDS,
) -> int:
    """The demo, or exit code 3 at once (nothing touched) when another one runs on the
    same data dir."""
    lock = DemoLock(settings.data_dir)
    try:
        lock.acquire()
    except DemoRunning as exc:
        console.print(f"[red]{exc}[/]")
        return 3
    try:
        return await _run_demo(
            settings,
            lock,
            days=days or days_of_month(start),
            seed=seed,
            serve=serve,
            console=console,
            start=start,
            live_pace=live_pace,
        )
    finally:
        lock.release()


async def _run_demo(
    settings: Settings,
    lock: DemoLock,
    *,
    days: int,
    seed: int,
    serve: bool,
    console: Console,
    start: date,
    live_pace: float,
) -> int:
    data_dir = demo_data_dir(settings.data_dir)
    settings = demo_settings(settings, data_dir)
    here = [name for name in service_names() if name not in OWN_PROCESS]
    platform = Platform(settings, consuming=here)
    try:
        platform.reserve_ports()  # before the previous run's data is wiped
    except PortUnavailable as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    shutil.rmtree(data_dir, ignore_errors=True)
    logs = data_dir / "logs"
    # the processes log to files: the terminal keeps the progress and the summary
    log_to(logs / "demo.log", settings)
    last = start + timedelta(days=days - 1)
    console.print(
        f"[bold]microhub demo[/]: {start:%Y-%m-%d} to {last:%Y-%m-%d} ({days} days), seed "
        f"{seed}; starting embedded Kafka, services and HTTP … (logs in {logs})"
    )
    children: list[Child] = []
    try:
        await platform.start()
        assert platform.cluster is not None  # start() starts one when it was given none
        assert platform.base_url is not None
        lock.update(url=platform.base_url)
        bootstrap = platform.cluster.bootstrap
        for name in OWN_PROCESS:
            if name in platform.services:
                child = await Child.start(
                    name,
                    ["serve", name, "--quiet"],
                    as_environment(settings, bootstrap, CHILD_TUNING.get(name), logs / name),
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
        print_keys(settings, console)
        print_links(platform.base_url, console, month=f"{start:%Y-%m}")
        out_dir = data_dir / "reports"
        # the simulation is a client like any other, in its own process
        simulation = await Child.start(
            "simulation",
            [
                "simulate",
                "--bootstrap-servers", ",".join(bootstrap),
                "--api-url", str(platform.base_url),
                "--api-key", ADMIN_KEY,
                "--start", start.isoformat(),
                "--days", str(days),
                "--seed", str(seed),
                "--out", str(out_dir),
            ],
            as_environment(settings, bootstrap, log=logs / "simulation"),
            capture=False,
        )  # fmt: skip
        children.append(simulation)  # (stopped with the others if something fails)
        code = await simulation.proc.wait()
        if code != 0:
            console.print(f"[red]the simulation failed (exit {code})[/]: see {logs}")
            return code
        if serve:
            from services.runtime.cli_common import wait_for_signal

            # the hubs go on at a pace people can watch: the dashboards stay live
            following = start + timedelta(days=days)
            children.append(
                await Child.start(
                    "live",
                    [
                        "simulate",
                        "--bootstrap-servers", ",".join(bootstrap),
                        "--api-url", str(platform.base_url),
                        "--api-key", ADMIN_KEY,
                        "--start", following.isoformat(),
                        "--days", str(LIVE_DAYS),
                        "--seed", str(seed),
                        "--pace", str(live_pace),
                        "--no-report",
                    ],
                    as_environment(settings, bootstrap, log=logs / "live"),
                    capture=False,
                )
            )  # fmt: skip
            hour = live_pace / (TICK / timedelta(hours=1))
            console.print(
                f"live: the hubs go on from {following:%Y-%m-%d}, a simulated hour every "
                f"{hour:.1f} s (the month's reports above stay as they are)."
            )
            print_links(platform.base_url, console, month=f"{start:%Y-%m}")
            console.print("Ctrl-C to stop")
            await wait_for_signal()
    finally:
        await asyncio.gather(*(child.stop() for child in children))
        await platform.stop()
    return 0


def log_to(path: Path, settings: Settings) -> None:
    """This process's logs go to ``path`` from now on."""
    import logging

    from services.runtime.logs import log_handler

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(log_handler(settings.log_format, path))
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def print_links(base: str, console: Console, *, month: str) -> None:
    console.print(
        f"sign in at [link]{base}/ui/[/] with a key above, then:\n"
        f"  hub operator:  {base}/ui/hubs/ber-westhafen\n"
        f"  city official: {base}/ui/cities/berlin?month={month}\n"
        f"  carrier:       {base}/ui/carriers/parcelco\n"
        f"  API: {base}/docs (OpenAPI), {base}/ui/asyncapi (AsyncAPI), {base}/metrics"
    )


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
