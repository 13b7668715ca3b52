"""Wave planning benchmark: every solver on the same instances, against the best known.

    python -m bench.dispatch_solver                 # Berlin + Oslo, 50/100/200/400 stops
    python -m bench.dispatch_solver --quick         # no 30 s OR-Tools, no long reference run
    python -m bench.dispatch_solver --sizes 50 200 --cities berlin
    python -m bench.dispatch_solver --quick --repeat  # each plan twice: same routes?

Instances: stops clustered like real addresses (dense neighbourhoods plus scatter) around
the sample hubs Berlin Westhafen and Oslo Alnabru, 1-6 parcels per stop, the hub's fleet
from fleet.yaml (bikes, trikes, e-vans), repeated until it has about 1.25x the load, 8-hour
shifts, the hub's service minutes, the city's circuity. Then Solomon-style VRPTW
instances (random, clustered, mixed; 100 stops with time windows), generated: no package
on the registries we use ships the Solomon or Homberger sets (vrplib only reads them);
the one Solomon instance found in a package (RC208) is in bench/published_bks.py.

Solvers: PyVRP with the service's budget (iterations, seed), OR-Tools with 2 s and 30 s
(guided local search, as the service planned until now), VROOM (pyvroom, exploration
level 5 or --vroom-exploration) when the wheel is installed, the greedy fallback, and
PyVRP with 10x the iterations as a reference. ``best`` is the shortest plan that serves
every stop found by any of them; ``÷best`` compares each plan to it. Every plan is
re-checked in real units (``broken``: limits broken). ``cpu s`` is the process's CPU
time (all threads); ``--repeat`` plans everything twice and says whether the routes came
out the same. Results: docs/solver-choice.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bench import vroom_planner
from bench.ortools_planner import solve_ortools
from services.dispatch.cvrp import _build
from services.dispatch.fleet import load_fleet
from services.dispatch.solver import (
    DEFAULT_ITERATIONS,
    SOLVER_GREEDY,
    Plan,
    Point,
    StopDemand,
    VehicleSpec,
    WaveInstance,
    _greedy,
    _plan_from,
    _unservable,
    check_plan,
    plan_wave,
)

CITIES = {
    # hub, its fleet in fleet.yaml, the city's circuity and how far the stops spread
    "berlin": ("ber-westhafen", Point(52.5380, 13.3410), 0.072, 0.147),
    "oslo": ("osl-alnabru", Point(59.9290, 10.8420), 0.045, 0.09),
}


def city_instance(city: str, stops: int, *, seed: int) -> WaveInstance:
    hub_id, hub, half_lat, half_lon = CITIES[city]
    fleet = load_fleet()
    hub_fleet = next(h for h in fleet.hubs if h.hub_id == hub_id)
    rng = random.Random(f"{city}:{stops}:{seed}")
    centres = [
        Point(
            hub.lat + rng.uniform(-half_lat, half_lat), hub.lon + rng.uniform(-half_lon, half_lon)
        )
        for _ in range(max(3, stops // 25))
    ]
    demands = []
    for i in range(stops):
        if rng.random() < 0.7:
            c = rng.choice(centres)
            p = Point(c.lat + rng.gauss(0, 0.006), c.lon + rng.gauss(0, 0.01))
        else:
            p = Point(
                hub.lat + rng.uniform(-half_lat, half_lat),
                hub.lon + rng.uniform(-half_lon, half_lon),
            )
        parcels = rng.choice([1, 1, 1, 2, 2, 3, 4, 6])
        kg = round(sum(rng.uniform(0.3, 6) for _ in range(parcels)), 2)
        m3 = round(parcels * rng.uniform(0.01, 0.04), 4)
        demands.append(StopDemand(f"s{i:04d}", p, parcels, kg, m3))
    need_kg = sum(d.weight_kg for d in demands) * 1.25
    need_parcels = sum(d.parcels for d in demands) * 1.25
    vehicles: list[VehicleSpec] = []
    while (
        sum(v.capacity_kg for v in vehicles) < need_kg
        or sum(v.capacity_parcels for v in vehicles) < need_parcels
    ):
        for c in hub_fleet.vehicles:
            vehicles.append(
                VehicleSpec(
                    f"{c.id}-{len(vehicles):02d}",
                    c.capacity.parcels,
                    c.capacity.kg,
                    c.capacity.m3,
                    c.range_km,
                    c.speed_kmh,
                    8 * 60,
                )
            )
    return WaveInstance(
        hub,
        demands,
        vehicles,
        circuity=fleet.circuity_of(city),
        service_min_per_stop=hub_fleet.service_minutes_per_stop,
    )


def solomon_like(kind: str, *, seed: int, stops: int = 100) -> WaveInstance:
    """Solomon's recipe in our units: R (uniform), C (clustered), RC (half each) over a
    12 x 12 km square, 10 min service, windows of 30-120 min spread over a 10-hour day
    (each reachable from the hub), 25 identical vans of 200 parcels."""
    rng = random.Random(f"solomon:{kind}:{seed}")
    hub = Point(52.52, 13.40)
    dlat, dlon = 0.054, 0.088  # about 6 km each way
    centres = [
        Point(hub.lat + rng.uniform(-dlat, dlat), hub.lon + rng.uniform(-dlon, dlon))
        for _ in range(8)
    ]
    demands = []
    for i in range(stops):
        clustered = kind == "C" or (kind == "RC" and i % 2 == 0)
        if clustered:
            c = rng.choice(centres)
            p = Point(c.lat + rng.gauss(0, 0.004), c.lon + rng.gauss(0, 0.006))
        else:
            p = Point(hub.lat + rng.uniform(-dlat, dlat), hub.lon + rng.uniform(-dlon, dlon))
        width = rng.uniform(30, 120)
        opens = rng.uniform(30, 600 - width - 60)
        parcels = rng.randint(1, 10)
        demands.append(
            StopDemand(
                f"{kind}{i:03d}",
                p,
                parcels,
                parcels * 2.0,
                parcels * 0.02,
                window=(opens, opens + width),
            )
        )
    vans = [VehicleSpec(f"van-{v:02d}", 200, 900, 11, 190, 25, 600) for v in range(25)]
    return WaveInstance(hub, demands, vans, circuity=1.3, service_min_per_stop=10)


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    km: float
    served: int
    vehicles: int
    broken: int
    fell_back: bool
    routes: tuple[tuple[str, tuple[str, ...]], ...]


def _timed(inst: WaveInstance, planner: Callable[[WaveInstance], Plan]) -> Run:
    started, cpu_started = time.perf_counter(), time.process_time()
    plan = planner(inst)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return Run(
        seconds,
        cpu_seconds,
        plan.total_km,
        sum(len(r.stop_keys) for r in plan.routes),
        len(plan.routes),
        len(check_plan(inst, plan)),
        plan.solver == SOLVER_GREEDY,
        tuple(sorted((r.vehicle_id, r.stop_keys) for r in plan.routes)),
    )


def _external(solve: Callable[..., list[list[list[int]]] | None], **kwargs: object):
    """A plan from a solver outside the service (OR-Tools, VROOM) on the same integer model."""

    def planner(inst: WaveInstance) -> Plan:
        servable, unserved = _unservable(inst)
        model = _build(inst, servable)
        routes = solve(model, **kwargs)
        name = "external"
        if routes is None:
            routes, name = _greedy(model), SOLVER_GREEDY
        return _plan_from(inst, model, servable, unserved, routes, name, [])

    return planner


def planners(args: argparse.Namespace) -> list[tuple[str, Callable[[WaveInstance], Plan]]]:
    chosen: list[tuple[str, Callable[[WaveInstance], Plan]]] = [
        (
            f"pyvrp {args.iterations} it",
            lambda i: plan_wave(i, iterations=args.iterations, seed=args.seed),
        ),
        ("ortools 2 s", _external(solve_ortools, seconds=2.0)),
    ]
    if not args.quick:
        chosen.append(("ortools 30 s", _external(solve_ortools, seconds=30.0)))
    if vroom_planner.available():
        level = args.vroom_exploration
        chosen.append((f"vroom x{level}", _external(vroom_planner.solve_vroom, exploration=level)))
    chosen.append(("greedy", lambda i: plan_wave(i, time_limit_s=0)))
    if not args.quick:
        chosen.append(
            (
                f"pyvrp {10 * args.iterations} it (reference)",
                lambda i: plan_wave(i, iterations=10 * args.iterations, seed=args.seed),
            )
        )
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[50, 100, 200, 400])
    parser.add_argument("--cities", nargs="*", default=list(CITIES))
    parser.add_argument("--solomon", nargs="*", default=["R", "C", "RC"])
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vroom-exploration", type=int, default=5, help="VROOM's level, 0-5")
    parser.add_argument("--quick", action="store_true", help="no 30 s OR-Tools, no reference")
    parser.add_argument(
        "--repeat", action="store_true", help="plan each instance twice: same routes?"
    )
    args = parser.parse_args(argv)

    console = Console()
    if not console.is_terminal:  # piped into a file: do not squeeze the table
        console = Console(width=130)
    plan_wave(city_instance("berlin", 5, seed=0))  # imports outside the timings
    _external(solve_ortools, seconds=0.1)(city_instance("berlin", 5, seed=0))
    table = Table(
        title="Wave planning: km against the best known (shortest plan serving every stop)"
    )
    columns = ["instance", "solver", "wall s", "cpu s", "km", "served", "vehicles", "÷best"]
    columns += ["broken"] + (["same"] if args.repeat else [])
    for col in columns:
        table.add_column(col, justify="left" if col in ("instance", "solver") else "right")
    ratios: dict[tuple[str, str], list[float]] = {}
    walls: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    repeats: dict[tuple[str, str], list[bool]] = {}
    instances = [(f"{c} {n}", city_instance(c, n, seed=7)) for c in args.cities for n in args.sizes]
    instances += [(f"vrptw {k}100", solomon_like(k, seed=7)) for k in args.solomon]
    for label, inst in instances:
        group = label.split()[-1] if not label.startswith("vrptw") else "vrptw 100"
        runs = [(name, _timed(inst, p)) for name, p in planners(args)]
        again = [_timed(inst, p).routes for _, p in planners(args)] if args.repeat else []
        complete = [r.km for _, r in runs if r.served == len(inst.stops) and not r.broken]
        best = min(complete) if complete else None
        for k, (name, r) in enumerate(runs):
            ratio = r.km / best if best and r.served == len(inst.stops) else None
            if ratio is not None:
                ratios.setdefault((name, group), []).append(ratio)
            walls.setdefault((name, group), []).append(r.seconds)
            cpus.setdefault((name, group), []).append(r.cpu_seconds)
            row = [
                label,
                name + (" (fell back to greedy)" if r.fell_back and name != "greedy" else ""),
                f"{r.seconds:.2f}",
                f"{r.cpu_seconds:.2f}",
                f"{r.km:.1f}",
                f"{r.served}/{len(inst.stops)}",
                str(r.vehicles),
                f"{ratio:.3f}" if ratio is not None else "-",
                str(r.broken),
            ]
            if args.repeat:
                same = again[k] == r.routes
                repeats.setdefault((name, group), []).append(same)
                row.append("yes" if same else "no")
            table.add_row(*row)
        table.add_section()
        console.print(f"{label} done", style="dim")
    console.print(table)
    summary = Table(title="÷best per solver and size (plans that serve every stop)")
    columns = ["solver", "stops", "÷best median", "÷best worst", "complete", "wall s max"]
    columns += ["cpu s max"] + (["same routes"] if args.repeat else [])
    for col in columns:
        summary.add_column(col, justify="left" if col in ("solver", "stops") else "right")
    for key, times in walls.items():
        values = ratios.get(key, [])
        row = [
            key[0],
            key[1],
            f"{statistics.median(values):.3f}" if values else "-",
            f"{max(values):.3f}" if values else "-",
            f"{len(values)}/{len(times)}",
            f"{max(times):.2f}",
            f"{max(cpus[key]):.2f}",
        ]
        if args.repeat:
            row.append(f"{sum(repeats[key])}/{len(repeats[key])}")
        summary.add_row(*row)
    console.print(summary)
    overall = Table(title="÷best over all instances")
    for col in ("solver", "median", "worst", "instances"):
        overall.add_column(col, justify="left" if col == "solver" else "right")
    for name in dict.fromkeys(n for n, _ in ratios):
        values = [v for (n, _), vs in ratios.items() if n == name for v in vs]
        overall.add_row(
            name, f"{statistics.median(values):.3f}", f"{max(values):.3f}", str(len(values))
        )
    console.print(overall)


if __name__ == "__main__":
    main()
