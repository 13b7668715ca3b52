"""`microhub demo`: the platform on its embedded defaults (embedded Kafka, SQLite under
``.microhub/demo``, one HTTP server), driven by the city simulation over Kafka.

Simulated time runs ahead of the wall clock, so the timers that nudge by wall time (the
no-show sweep, the dispatch wave nudge) are off: only event time decides. Dispatch plans
with the deterministic greedy planner (a time-limited OR-Tools search can end in a
different plan from run to run), so the same seed gives the same report.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.runtime.platform import Platform
from services.runtime.settings import Settings
from services.simulation import summary as summary_mod
from services.simulation.driver import Simulation

ADMIN_KEY = "demo-admin"

# What the demo changes from the defaults, and why (see the module docstring).
DEMO_OVERRIDES = {
    "sweep_interval_seconds": 0,
    "dispatch_wave_nudge_seconds": 0,
    "dispatch_solver_time_limit_seconds": 0,
    "dispatch_wave_interval_minutes": 60,
    # the embedded mock broker waits out a consumer's whole long poll: keep hops short
    "kafka_fetch_max_wait_ms": 50,
}


def demo_settings(settings: Settings, data_dir: Path) -> Settings:
    return settings.model_copy(update={"data_dir": data_dir, **DEMO_OVERRIDES})


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
        sim = Simulation(
            settings,
            bootstrap,
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

    platform = await Platform(settings, extra_routers=web_routers(settings)).start()
    console.print(
        f"  services: {', '.join(platform.services)}; HTTP at [link]{platform.base_url}[/]"
    )
    try:
        result = await simulate_and_report(
            settings,
            platform.cluster.bootstrap,
            api_url=platform.base_url,
            api_key=ADMIN_KEY,
            days=days,
            seed=seed,
            out_dir=data_dir / "reports",
            console=console,
        )
        if serve:
            from services.runtime.cli import _wait_for_signal, print_keys

            print_keys(settings)
            base = platform.base_url
            console.print(
                f"hub operator: {base}/ui/hubs/ber-westhafen?api_key=demo-operator-ber-westhafen\n"
                f"city official: {base}/ui/cities/berlin?api_key=demo-official-berlin"
                f"&month={result['start'][:7]}\n"
                f"carrier: {base}/ui/carriers/parcelco?api_key=demo-carrier-parcelco\n"
                f"OpenAPI: {base}/docs, AsyncAPI: {base}/ui/asyncapi — Ctrl-C to stop"
            )
            await _wait_for_signal()
    finally:
        await platform.stop()
    return 0
