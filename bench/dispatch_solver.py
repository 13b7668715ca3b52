"""Wave planning benchmark: the planner as the service runs it (OR-Tools, 2 s budget),
the same solver given 30 s (the quality ceiling, measured in the same run) and the greedy
fallback, on seeded city-sized instances.

    python -m bench.dispatch_solver                # 50/5, 200/15, 500/30; ceiling for 50 and 200
    python -m bench.dispatch_solver --ceiling-500  # also the 30 s ceiling for 500 stops
    python -m bench.dispatch_solver --ceiling-seconds 10 --sizes 50:5 200:15

Target (issue 3): 200 stops / 15 vehicles planned in <= 2 s with total km within 5 % of
the 30 s result.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from services.dispatch.solver import (
    SOLVER_GREEDY,
    Point,
    StopDemand,
    VehicleSpec,
    WaveInstance,
    check_plan,
    plan_wave,
)

BERLIN_HUB = Point(52.5380, 13.3410)  # Westhafen
# About 16 km north-south by 20 km east-west around the hub: the inner city of Berlin.
HALF_LAT, HALF_LON = 0.072, 0.147


def instance(stops: int, vehicles: int, *, seed: int) -> WaveInstance:
    """Stops clustered like real addresses (a few dense neighbourhoods plus scatter),
    parcels and weights of B2C/B2B last mile, and a mixed electric fleet sized so that
    about 80 % of its capacity is needed."""
    rng = random.Random(seed)
    centres = [
        Point(
            BERLIN_HUB.lat + rng.uniform(-HALF_LAT, HALF_LAT),
            BERLIN_HUB.lon + rng.uniform(-HALF_LON, HALF_LON),
        )
        for _ in range(max(3, stops // 25))
    ]
    demands = []
    for i in range(stops):
        if rng.random() < 0.7:
            c = rng.choice(centres)
            p = Point(c.lat + rng.gauss(0, 0.008), c.lon + rng.gauss(0, 0.013))
        else:
            p = Point(
                BERLIN_HUB.lat + rng.uniform(-HALF_LAT, HALF_LAT),
                BERLIN_HUB.lon + rng.uniform(-HALF_LON, HALF_LON),
            )
        parcels = rng.choice([1, 1, 1, 2, 2, 3, 4, 6])
        kg = round(sum(rng.uniform(0.3, 8) for _ in range(parcels)), 2)
        m3 = round(parcels * rng.uniform(0.01, 0.06), 4)
        demands.append(StopDemand(f"s{i:04d}", p, parcels, kg, m3))
    total_kg = sum(d.weight_kg for d in demands)
    total_parcels = sum(d.parcels for d in demands)
    fleet = []
    for j in range(vehicles):
        kind = ("bike", "bike", "trike")[j % 3]
        share = 1.25 / vehicles  # each vehicle: a bit more than its share of the load
        base = {"bike": (140, 1.5, 55, 14), "trike": (200, 2.0, 50, 15)}[kind]
        kg = max(base[0], total_kg * share)
        parcels = max(20, int(total_parcels * share) + 1)
        fleet.append(
            VehicleSpec(
                f"{kind}-{j:02d}", parcels, kg, base[1] * kg / base[0], base[2], base[3], 8 * 60
            )
        )
    return WaveInstance(BERLIN_HUB, demands, fleet, circuity=1.3, service_min_per_stop=3.0)


@dataclass
class Run:
    seconds: float
    km: float
    served: int
    solver: str
    violations: int


def run(inst: WaveInstance, limit: float) -> Run:
    started = time.perf_counter()
    plan = plan_wave(inst, time_limit_s=limit)
    seconds = time.perf_counter() - started
    return Run(
        seconds,
        plan.total_km,
        sum(len(r.stop_keys) for r in plan.routes),
        plan.solver,
        len(check_plan(inst, plan)),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.0, help="the service's budget (s)")
    parser.add_argument("--ceiling-seconds", type=float, default=30.0)
    parser.add_argument(
        "--ceiling-500",
        action="store_true",
        help="also run the ceiling on the 500-stop instance (slow)",
    )
    parser.add_argument(
        "--sizes", nargs="*", default=["50:5", "200:15", "500:30"], help="stops:vehicles pairs"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    console = Console()
    if not console.is_terminal:  # piped into a file: do not squeeze the table to 80 columns
        console = Console(width=120)
    plan_wave(instance(5, 1, seed=0), time_limit_s=0.1)  # import OR-Tools outside the timings
    table = Table(title=f"Wave planning (seed {args.seed}; km = haversine x 1.3)")
    for col in ("size", "planner", "wall s", "km", "served", "÷ceiling", "÷greedy", "broken"):
        table.add_column(col, justify="left" if col == "planner" else "right", no_wrap=True)
    for size in args.sizes:
        stops, vehicles = (int(x) for x in size.split(":"))
        inst = instance(stops, vehicles, seed=args.seed)
        greedy = run(inst, 0)
        ours = run(inst, args.budget)
        want_ceiling = stops < 500 or args.ceiling_500
        ceiling = run(inst, args.ceiling_seconds) if want_ceiling else None
        rows = [(f"service {args.budget:g}s", ours)]
        if ceiling:
            rows.append((f"ceiling {args.ceiling_seconds:g}s", ceiling))
        rows.append(("greedy", greedy))
        for name, r in rows:
            vs_ceiling = f"{r.km / ceiling.km:.3f}" if ceiling and ceiling.km else "-"
            table.add_row(
                f"{stops}/{vehicles}",
                name
                + (
                    " (fell back to greedy)"
                    if r is not greedy and r.solver == SOLVER_GREEDY
                    else ""
                ),
                f"{r.seconds:.2f}",
                f"{r.km:.1f}",
                f"{r.served}/{stops}",
                vs_ceiling,
                f"{r.km / greedy.km:.3f}" if greedy.km else "-",
                str(r.violations),
            )
        table.add_section()
        console.print(f"{stops}/{vehicles} done", style="dim")
    console.print(table)


if __name__ == "__main__":
    main()
