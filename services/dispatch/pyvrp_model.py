"""The wave as a PyVRP problem (pure: no I/O, no clock): PyVRP (MIT; Wouda, Lan & Kool,
*PyVRP: a high-performance VRP solver package*, INFORMS J. Computing 2024) solves it
with iterated local search, stopped after a number of **iterations**, not seconds, and
seeded: the same wave gives the same routes on any machine, however busy (a replay plans
what the live run planned). Why PyVRP and not OR-Tools: docs/solver-choice.md.

Everything is in the integer model of cvrp.py: metres, seconds from the wave's time,
100 g, litres, rounded against the vehicle. Stops are optional with a prize of 1 000 km,
so the solver serves as many as the limits allow and leaves the rest for a later wave.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from services.dispatch.cvrp import NO_LATER_THAN_S, _Model

# Dropping a stop costs more than any route could ever save by skipping it (1 000 km).
DROP_PENALTY_M = 1_000_000
# Late acceptance over the last 100 solutions, not PyVRP's 300: with a budget of one or
# two thousand iterations the longer history accepts worse moves for too much of the run
# (measured on the bench's instances when PyVRP came in; docs/solver-choice.md).
HISTORY_LENGTH = 100
# Each stop's granular neighbourhood (the nearest stops PyVRP's moves try it with):
# PyVRP's 50 up to WIDE_UP_TO_STOPS stops, 30 beyond. An iteration's cost grows with the
# wave, and at 1 500 iterations 400 stops took 2.1-2.9 s of CPU with 50; with 30 they take
# 1.4-1.6 s and plan no longer (Berlin 400: 1.001 x the 15 000-iteration reference, not
# 1.021 x). Smaller waves keep 50: within 2 s anyway, and on single seeds 30 planned up
# to 6 % longer there (docs/solver-choice.md).
WIDE_NEIGHBOURS = 50
NARROW_NEIGHBOURS = 30
WIDE_UP_TO_STOPS = 250


def neighbours_for(stops: int) -> int:
    """The neighbourhood size for a wave of ``stops`` stops (the wave alone decides it:
    deterministic)."""
    return WIDE_NEIGHBOURS if stops <= WIDE_UP_TO_STOPS else NARROW_NEIGHBOURS


# An arc no vehicle may drive (into or out of a stop pinned to another vehicle): longer
# than any range, and costlier than leaving the stop unserved.
FORBIDDEN_M = 100 * DROP_PENALTY_M


def solve_pyvrp(model: _Model, *, iterations: int, seed: int) -> list[list[list[int]]] | None:
    """Each vehicle's trips (node indices of ``model``), or None when the best solution
    found breaks a limit (the caller falls back to the greedy)."""
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType, solve
    from pyvrp.IteratedLocalSearch import IteratedLocalSearchParams
    from pyvrp.search import NeighbourhoodParams
    from pyvrp.solve import SolveParams
    from pyvrp.stop import MaxIterations

    n = len(model.points)
    dist = np.asarray(model.dist_m, dtype=np.int64)
    horizon = max(model.shift_s) + 1
    # A profile per speed, and per vehicle that stops are pinned to: on every other
    # vehicle's profile the arcs into and out of a pinned stop are beyond any range, so
    # only its own vehicle can serve it (PyVRP has no per-client vehicle restriction).
    pinned_to: dict[int, list[int]] = defaultdict(list)
    for i in range(1, n):
        v_pinned = model.pinned[i]
        if v_pinned is not None:
            pinned_to[v_pinned].append(i)
    profiles: dict[tuple[float, int | None], int] = {}
    distances: list[Any] = []  # int64 matrices (PyVRP's stubs want ndarray[int])
    durations: list[Any] = []
    for v, speed in enumerate(model.speed_mps):
        key = (speed, v if v in pinned_to else None)
        if key in profiles:
            continue
        profiles[key] = len(durations)
        matrix = dist
        if pinned_to:
            matrix = dist.copy()
            for owner, nodes in pinned_to.items():
                if owner != key[1]:
                    matrix[nodes, :] = FORBIDDEN_M
                    matrix[:, nodes] = FORBIDDEN_M
            np.fill_diagonal(matrix, 0)
        distances.append(matrix)
        durations.append(np.ceil(matrix / speed).astype(np.int64))

    def profile_of(v: int) -> int:
        return profiles[(model.speed_mps[v], v if v in pinned_to else None)]

    zero = [0, 0, 0]

    def clients(required: bool) -> list[Client]:
        return [
            Client(
                location=i,
                delivery=zero if model.pickup[i] else list(model.demand(i)),
                pickup=list(model.demand(i)) if model.pickup[i] else zero,
                service_duration=model.service_s[i],
                tw_early=model.tw_early_s[i],
                tw_late=min(model.tw_late_s[i], NO_LATER_THAN_S, horizon),
                required=required,
                prize=0 if required else DROP_PENALTY_M,
            )
            for i in range(1, n)
        ]

    # Identical vehicles are one type with several available: fewer symmetric moves.
    types: dict[tuple[tuple[int, int, int], int, int, int, int], list[int]] = defaultdict(list)
    for v in range(len(model.vehicles)):
        shape = (
            model.capacity(v),
            model.range_m[v],
            model.shift_s[v],
            profile_of(v),
            model.max_trips[v],
        )
        types[shape].append(v)
    vehicle_types = [
        VehicleType(
            num_available=len(members),
            capacity=list(capacity),
            tw_early=0,
            tw_late=shift,
            start_late=0,  # a wave's vehicles leave now (after loading)
            max_distance=range_m,
            profile=profile,
            reload_depots=[0] if trips > 1 else [],
            max_reloads=trips - 1,
            name=",".join(str(v) for v in members),
        )
        for (capacity, range_m, shift, profile, trips), members in types.items()
    ]
    data = ProblemData(
        locations=[Location(p.lon, p.lat) for p in model.points],
        clients=clients(False),
        depots=[Depot(location=0, tw_early=0, tw_late=horizon, service_duration=model.load_s)],
        vehicle_types=vehicle_types,
        distance_matrices=distances,
        duration_matrices=durations,
    )
    params = SolveParams(
        ils=IteratedLocalSearchParams(history_length=HISTORY_LENGTH),
        neighbourhood=NeighbourhoodParams(num_neighbours=neighbours_for(n - 1)),
    )
    best = solve(
        data, MaxIterations(iterations), seed=seed, collect_stats=False, params=params
    ).best
    if not best.is_feasible():
        return None
    if best.num_clients() < n - 1 and max(model.max_trips) > 1:
        # PyVRP inserts a left-over optional stop only between stops, never behind a
        # reload at the hub: when stops are left and a vehicle may reload, try once more
        # with every stop required (the stops no vehicle could serve alone are not here)
        full = solve(
            data.replace(clients=clients(True)),
            MaxIterations(iterations),
            seed=seed,
            collect_stats=False,
            params=params,
        ).best
        if full.is_feasible():
            best = full
    routes: list[list[list[int]]] = [[] for _ in model.vehicles]
    free = {t: list(members) for t, members in enumerate(types.values())}
    for route in best.routes():
        v = free[route.vehicle_type()].pop(0)
        trips: list[list[int]] = []
        for activity in route.schedule():
            if activity.is_client():
                while len(trips) <= activity.trip:
                    trips.append([])
                trips[activity.trip].append(activity.idx + 1)  # clients follow the depot
        routes[v] = [t for t in trips if t]
    return routes
