"""`microhub simulate`: drive a running deployment with the city simulation, then fetch
its reports and write the summary.

Apart from demo.py, which starts the platform and runs this in a child process of its own
(the simulation is a client like any other): what the simulation needs of the services
(the hubs the API publishes, the consumer groups it waits for) is assembled here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.app.registry import specs
from services.runtime.settings import Settings
from services.simulation import summary as summary_mod
from services.simulation.catalogue import fetch_hubs
from services.simulation.driver import DEFAULT_START, Simulation


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
    start: date = DEFAULT_START,
    pace: float = 0.0,
    on_day: Callable[[int], None] = lambda _day: None,
) -> Simulation:
    """A simulation of the deployment behind ``api_url``: the hubs it publishes, and the
    consumer groups of the services declared here."""
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
        pace=pace,
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
    start: date = DEFAULT_START,
    pace: float = 0.0,
    report: bool = True,
) -> dict:
    """Drive a running platform (in this process or not) and write the summary (with
    ``report=False`` only drive it: the demo's live hubs after its month)."""
    started = time.monotonic()
    with Progress(
        TextColumn("simulated days" if not pace else "live, simulated days"),
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
            start=start,
            pace=pace,
            on_day=lambda _d: progress.advance(task),
        )
        last = sim.start + timedelta(days=days - 1)
        console.print(
            f"simulating {days} day(s), {sim.start:%a %Y-%m-%d} to {last:%a %Y-%m-%d}, "
            f"seed {seed}, {len(sim.hubs)} hubs"
        )
        observed = await sim.run()
    if not report:
        return {}
    reports = await summary_mod.fetch_reports(
        observed, api_url=api_url, api_key=api_key, out_dir=out_dir
    )
    result = summary_mod.as_dict(observed, reports)
    result["seed"], result["days"], result["start"] = seed, days, sim.start.isoformat()
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    (out_dir / "summary.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    summary_mod.print_summary(
        console, result, f"{days} simulated day(s) from {sim.start:%Y-%m-%d}, seed {seed}"
    )
    console.print(f"reports written to [bold]{out_dir}[/] ({len(reports)} city-month(s))")
    return result
