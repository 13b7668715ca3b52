"""`make demo`'s simulated month, timed: `microhub demo --days 30 --no-serve` as a newcomer
runs it, once with the machine's cores and once held to one core (what the demo gets
when the shared machine is busy), each in a fresh data directory.

    python -m bench.demo_month                  # 30 days, seed 7, all cores and one core
    python -m bench.demo_month --days 5 --cases all

Goal (issue 5): the first output within seconds, a 30-day simulation in under two
minutes. Both runs must give the same totals (the same seed gives the same results);
the bench fails if they do not.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(width=150)

GOAL_SECONDS = 120.0
FIRST_OUTPUT_GOAL_SECONDS = 5.0
# what must be equal between runs of one seed
TOTALS = ("bookings", "routes", "co2e_saved_kg_by_city", "dead_lettered", "messages_sent")


@dataclass
class Run:
    case: str
    cores: int
    first_output_s: float
    simulation_s: float  # the simulation and its reports, as the demo measures it
    command_s: float  # the whole command, start-up and shutdown included
    cpu_s: float  # every process of the demo together
    summary: dict


def _pin_to(cpus: set[int]):
    return lambda: os.sched_setaffinity(0, cpus)  # inherited by the demo's children


def run_demo(case: str, *, days: int, seed: int, cpus: set[int] | None) -> Run:
    with tempfile.TemporaryDirectory(prefix="microhub-bench-") as tmp:
        # unbuffered: what a terminal shows, when it shows it
        env = dict(os.environ, MICROHUB_DATA_DIR=tmp, MICROHUB_HTTP_PORT="0", PYTHONUNBUFFERED="1")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "services.app.cli", "demo"),
                *("--days", str(days), "--seed", str(seed), "--no-serve"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,  # where the CLI prints
            text=True,
            preexec_fn=_pin_to(cpus) if cpus else None,
        )
        assert proc.stderr is not None
        first = None
        tail: collections.deque[str] = collections.deque(maxlen=20)
        for line in proc.stderr:
            if first is None and line.strip():
                first = time.monotonic() - started
            tail.append(line)
        code = proc.wait()
        command_s = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if code != 0:
            raise SystemExit(f"{case}: the demo exited {code}:\n{''.join(tail)}")
        summary = json.loads((Path(tmp) / "demo" / "reports" / "summary.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(
        case=case,
        cores=len(cpus) if cpus else len(os.sched_getaffinity(0)),
        first_output_s=first if first is not None else command_s,
        simulation_s=float(summary["wall_seconds"]),
        command_s=command_s,
        cpu_s=cpu,
        summary=summary,
    )


def _totals(summary: dict) -> dict:
    """What one seed must reproduce: the summary's counts and every report's totals."""
    totals = {k: summary[k] for k in TOTALS}
    totals["reports"] = {k: v["totals"] for k, v in summary["reports"].items()}
    return totals


def _ratio(value: float, goal: float) -> str:
    ratio = value / goal
    colour = "green" if ratio < 1 else "red"
    return f"[{colour}]{ratio:.2f}[/]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cases",
        default="all,one-core",
        help="comma-separated: all (the machine's cores), one-core (pinned to one CPU)",
    )
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - {"all", "one-core"}
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}: use all, one-core")
    mine = sorted(os.sched_getaffinity(0))
    runs = []
    for case in cases:
        cpus = {mine[0]} if case == "one-core" else None
        with console.status(f"{case}: microhub demo --days {args.days} --no-serve …"):
            runs.append(run_demo(case, days=args.days, seed=args.seed, cpus=cpus))

    goal = GOAL_SECONDS
    table = Table(
        title=f"microhub demo --days {args.days} --seed {args.seed} --no-serve "
        f"(goal for 30 days: first output <= {FIRST_OUTPUT_GOAL_SECONDS:.0f} s, "
        f"simulation <= {goal:.0f} s)"
    )
    for column in (
        "case",
        "cores",
        "first output s",
        "simulation s",
        "÷ goal",
        "whole command s",
        "÷ goal",
        "CPU s",
        "cores busy",
    ):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in runs:
        table.add_row(
            r.case,
            str(r.cores),
            f"{r.first_output_s:.1f} {_ratio(r.first_output_s, FIRST_OUTPUT_GOAL_SECONDS)}",
            f"{r.simulation_s:.1f}",
            _ratio(r.simulation_s, goal),
            f"{r.command_s:.1f}",
            _ratio(r.command_s, goal),
            f"{r.cpu_s:.0f}",
            f"{r.cpu_s / r.command_s:.2f}",
        )
    console.print(table)
    first = runs[0].summary
    routes = first["routes"]
    console.print(
        f"{first['messages_sent']} messages sent, {routes['planned']} routes planned, "
        f"{routes['completed']} completed (the same in every run); CPU s: all the demo's "
        "processes together (services, simulation, embedded Kafka)"
    )
    differing = [r.case for r in runs[1:] if _totals(r.summary) != _totals(first)]
    if differing:
        raise SystemExit(f"the totals differ between runs of one seed: {', '.join(differing)}")


if __name__ == "__main__":
    main()
