"""VROOM (BSD-2; the `pyvroom` wheel) on the dispatch's integer model, for the solver
comparison only (bench/dispatch_solver.py). Distances as costs, range as max_distance,
shift as the vehicle's time window, stops' windows; one trip per vehicle, deliveries
only. Returns None when the wheel is not installed."""

from __future__ import annotations

import numpy as np

from services.dispatch.cvrp import NO_LATER_THAN_S, _Model


def available() -> bool:
    try:
        import vroom  # noqa: F401
    except ImportError:
        return False
    return True


def solve_vroom(model: _Model, *, exploration: int = 5, threads: int = 2) -> list[list[list[int]]]:
    import vroom

    problem = vroom.Input()
    dist = np.asarray(model.dist_m, dtype=np.uint32)
    profiles: dict[float, str] = {}
    for speed in model.speed_mps:
        if speed not in profiles:
            name = f"p{len(profiles)}"
            profiles[speed] = name
            problem.set_durations_matrix(name, np.ceil(dist / speed).astype(np.uint32))
            problem.set_distances_matrix(name, dist)
            problem.set_costs_matrix(name, dist)
    horizon = max(model.shift_s)
    for v in range(len(model.vehicles)):
        problem.add_vehicle(
            vroom.Vehicle(
                id=v,
                start=0,
                end=0,
                profile=profiles[model.speed_mps[v]],
                capacity=list(model.capacity(v)),
                time_window=vroom.TimeWindow(model.load_s, model.shift_s[v]),
                max_distance=model.range_m[v],
            )
        )
    for i in range(1, len(model.points)):
        late = min(model.tw_late_s[i], NO_LATER_THAN_S, horizon)
        problem.add_job(
            vroom.Job(
                id=i,
                location=i,
                default_service=model.service_s[i],
                delivery=list(model.demand(i)),
                time_windows=[vroom.TimeWindow(min(model.tw_early_s[i], late), late)],
            )
        )
    solution = problem.solve(exploration_level=exploration, nb_threads=threads)
    routes: list[list[list[int]]] = [[] for _ in model.vehicles]
    frame = solution.routes
    for v in range(len(model.vehicles)):
        rows = frame[(frame["vehicle_id"] == v) & (frame["type"] == "job")]
        nodes = [int(j) for j in rows["id"]]
        routes[v] = [nodes] if nodes else []
    return routes
