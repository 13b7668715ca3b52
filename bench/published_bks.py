"""PyVRP, as the service runs it, on published benchmark instances against their best-known
solutions (docs/solver-choice.md).

    python -m bench.published_bks DIR        # DIR holds RC208.txt, RC208.sol, E-n22-k4.txt

No package on the registries we use ships the Solomon or Homberger sets; the one public
copy found there is Solomon's RC208 (with its best-known solution) and the CVRP
instance E-n22-k4, test data inside the pyvrp 0.6.2 wheel on PyPI:

    pip download --no-deps --only-binary :all: -d /tmp/w pyvrp==0.6.2
    python -m zipfile -e /tmp/w/pyvrp-0.6.2-*.whl /tmp/w/x
    python -m bench.published_bks /tmp/w/x/pyvrp/tests/data

The settings are the service's (pyvrp_model.py): iterated local search, late acceptance
over 100 solutions, seeded, stopped after a number of iterations; every client required,
cost = distance. Distances go to PyVRP x100 and rounded (Solomon: real Euclidean, as the
best-known values are given); E-n22-k4 uses CVRPLIB's rounded distances (EUC_2D). Costs
are re-computed from the routes in the instance's own units.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from services.dispatch.pyvrp_model import HISTORY_LENGTH
from services.dispatch.solver import DEFAULT_ITERATIONS

# name: (file, format, best-known distance, where the value comes from)
INSTANCES = {
    "RC208 (Solomon VRPTW)": ("RC208.txt", "solomon", None, "RC208.sol beside it"),
    "E-n22-k4 (CVRP)": ("E-n22-k4.txt", "vrplib", 375.0, "optimal, CVRPLIB"),
}


def _read_sol_cost(path: Path) -> float | None:
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.lower().startswith("cost"):
            return float(line.split()[1])
    return None


def solve(path: Path, fmt: str, *, iterations: int, seed: int) -> tuple[float, int, float, float]:
    import vrplib
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType
    from pyvrp import solve as pyvrp_solve
    from pyvrp.IteratedLocalSearch import IteratedLocalSearchParams
    from pyvrp.solve import SolveParams
    from pyvrp.stop import MaxIterations

    inst = vrplib.read_instance(str(path), instance_format=fmt)
    xy = np.asarray(inst["node_coord"], dtype=float)
    real = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    if fmt == "vrplib":  # TSPLIB's EUC_2D: nearest integer
        real = np.floor(real + 0.5)
    scale = 100
    dist = np.round(real * scale).astype(np.int64)
    n = len(xy)
    demand = np.asarray(inst["demand"], dtype=int)
    tw = inst.get("time_window")
    service = inst.get("service_time")
    depot = 0
    clients = [
        Client(
            location=i,
            delivery=[int(demand[i])],
            service_duration=int(service[i] * scale) if service is not None else 0,
            tw_early=int(tw[i][0] * scale) if tw is not None else 0,
            tw_late=int(tw[i][1] * scale) if tw is not None else np.iinfo(np.int64).max // 4,
        )
        for i in range(n)
        if i != depot
    ]
    horizon = int(tw[depot][1] * scale) if tw is not None else np.iinfo(np.int64).max // 4
    vehicles = int(inst.get("vehicles", n - 1))
    data = ProblemData(
        clients=clients,
        locations=[Location(int(x), int(y)) for x, y in xy],
        depots=[Depot(location=0, tw_early=0, tw_late=horizon)],
        vehicle_types=[
            VehicleType(num_available=vehicles, capacity=[int(inst["capacity"])], tw_late=horizon)
        ],
        distance_matrices=[dist],
        duration_matrices=[dist],
    )
    params = SolveParams(ils=IteratedLocalSearchParams(history_length=HISTORY_LENGTH))
    started, cpu = time.perf_counter(), time.process_time()
    best = pyvrp_solve(
        data, MaxIterations(iterations), seed=seed, collect_stats=False, params=params
    ).best
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not best.is_feasible():
        return math.inf, 0, wall, cpu
    km = 0.0
    for route in best.routes():
        nodes = [0, *(a.idx + 1 for a in route.schedule() if a.is_client()), 0]
        km += sum(real[a, b] for a, b in itertools.pairwise(nodes))
    return km, best.num_routes(), wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="folder with RC208.txt, RC208.sol, E-n22-k4.txt")
    parser.add_argument(
        "--iterations", nargs="*", type=int, default=[DEFAULT_ITERATIONS, 10 * DEFAULT_ITERATIONS]
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3])
    args = parser.parse_args(argv)
    table = Table(title="PyVRP (service settings) against published best-known solutions")
    for col in ("instance", "best known", "iterations", "seed", "cost", "÷bks", "routes"):
        table.add_column(col, justify="left" if col == "instance" else "right")
    table.add_column("wall s", justify="right")
    table.add_column("cpu s", justify="right")
    for name, (file, fmt, bks, _) in INSTANCES.items():
        path = args.dir / file
        if not path.exists():
            Console().print(f"{path} missing: skipped", style="yellow")
            continue
        known = bks if bks is not None else _read_sol_cost(path.with_suffix(".sol"))
        for iterations in args.iterations:
            ratios = []
            for seed in args.seeds:
                cost, routes, wall, cpu = solve(path, fmt, iterations=iterations, seed=seed)
                ratio = cost / known if known else math.nan
                ratios.append(ratio)
                table.add_row(
                    name,
                    f"{known:.1f}" if known else "-",
                    str(iterations),
                    str(seed),
                    f"{cost:.1f}",
                    f"{ratio:.3f}",
                    str(routes),
                    f"{wall:.2f}",
                    f"{cpu:.2f}",
                )
            table.add_row(
                name, "", str(iterations), "median", "", f"{statistics.median(ratios):.3f}"
            )
        table.add_section()
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
