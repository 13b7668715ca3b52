"""Wave planning at event time: when a wave is due, solve it and plan its routes (used by
:class:`services.dispatch.handlers.DispatchHandlers` and the wave timer)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from contracts.common import GeoPoint
from contracts.dispatch import RoutePlanned, RouteStop, StopProgress, StopReturned
from services.dispatch import domain, progress, store
from services.dispatch.changes import ChangeLog
from services.dispatch.domain import RouteStatus, StopStatus, WavePolicy
from services.dispatch.fleet import FleetFile
from services.dispatch.solver import (
    DELIVERY,
    PICKUP,
    Plan,
    Point,
    StopDemand,
    WaveInstance,
    check_plan,
    plan_wave,
    timeline,
)
from services.runtime.uow import UnitOfWork

log = logging.getLogger(__name__)


Planner = Callable[[WaveInstance, float], Awaitable[Plan]]


async def plan_in_process(instance: WaveInstance, time_limit_s: float) -> Plan:
    return plan_wave(instance, time_limit_s=time_limit_s)


def stop_demand(key: str, stop: store.StopRow, now: datetime) -> StopDemand:
    """A waiting stop as the solver sees it at ``now``: its window in minutes from now."""
    window = None
    if stop.window_start is not None and stop.window_end is not None:
        window = (
            (stop.window_start - now).total_seconds() / 60,
            (stop.window_end - now).total_seconds() / 60,
        )
    return StopDemand(
        key,
        Point(stop.lat, stop.lon),
        stop.parcels,
        stop.weight_kg,
        stop.volume_m3,
        kind=PICKUP if stop.kind == PICKUP else DELIVERY,
        window=window,
        vehicle=stop.pinned_vehicle,
    )


class WavePlanning:
    """Plans a hub's wave when its policy says one is due."""

    def __init__(
        self,
        *,
        policy: WavePolicy,
        fleet: FleetFile,
        changes: ChangeLog,
        planner: Planner = plan_in_process,
        solver_time_limit_s: float,
    ) -> None:
        self.policy = policy
        self.fleet = fleet
        self.changes = changes
        self.planner = planner
        self.solver_time_limit_s = solver_time_limit_s

    async def maybe_plan(self, uow: UnitOfWork, hub_id: str, now: datetime) -> int:
        """Plan a wave at ``now`` if one is due; returns the number of routes planned.
        Called after every event for the hub (event time) and by the wave timer."""
        hub = await store.get_hub(uow.session, hub_id)
        if hub is None:
            return 0
        # Decide on the numbers first: most events plan nothing, and need no stop rows.
        queue = await store.waiting_queue(uow.session, hub_id, hub.last_wave_at)
        why = domain.wave_due(
            now=now,
            waiting=queue.waiting,
            fresh=queue.fresh,
            oldest_fresh_since=queue.oldest_fresh_at,
            last_wave_at=hub.last_wave_at,
            policy=self.fleet.wave_policy(hub_id, self.policy),
            timezone=hub.timezone,
        )
        if why is None:
            return 0
        return await self.plan(uow, hub, now, why)

    async def plan(self, uow: UnitOfWork, hub: store.HubRow, now: datetime, why: str) -> int:
        """Plan a wave of the hub's waiting stops at ``now``, whatever the policy says (a
        due wave, or the dispatcher's re-plan). A hub in review mode gets proposed routes:
        nothing is published until the dispatcher releases them (``release``)."""
        hub_id = hub.id
        review = self.fleet.hub(hub_id).waves.release == "review"
        waiting = await store.stops_of_hub(uow.session, hub_id, (StopStatus.WAITING,))
        fleet = await store.fleet_of(uow.session, hub_id)
        specs = [domain.vehicle_spec(v, now=now, timezone=hub.timezone) for v in fleet]
        free = [s for s in specs if s is not None]
        if not free:
            # Nothing to solve; no wave is used up, so the next freed vehicle plans at once.
            busy = [
                f"{v.config.id}: {domain.why_not_free(v, now=now, timezone=hub.timezone)}"
                for v in fleet
            ]
            detail = "; ".join(busy[:6]) + (" …" if len(busy) > 6 else "")
            reason = "no_vehicle_free: " + (detail or "the hub has no vehicles")
            await self._set_reasons(
                uow,
                hub_id,
                waiting,
                {domain.stop_key(s.booking_id, s.stop_id): reason for s in waiting},
                now,
            )
            return 0

        by_key = {domain.stop_key(s.booking_id, s.stop_id): s for s in waiting}
        instance = domain.wave_instance(
            hub_location=Point(hub.lat, hub.lon),
            stops=[stop_demand(key, s, now) for key, s in by_key.items()],
            vehicles=free,
            circuity=self.fleet.circuity_of(hub.city_id),
            service_minutes_per_stop=self.fleet.service_minutes(hub_id),
            load_minutes_per_trip=self.fleet.load_minutes(hub_id),
        )
        plan = await self.planner(instance, self.solver_time_limit_s)
        problems = check_plan(instance, plan)
        if problems:  # a guard that should never fire: publish nothing that breaks a limit
            log.error("plan for %s breaks limits (%s): using the greedy instead", hub_id, problems)
            plan = plan_wave(instance, time_limit_s=0)
        seq = await store.next_wave(uow.session, hub_id, now)
        wave_id = domain.wave_id_for(hub_id, seq)
        types = {v.config.id: v.config.type for v in fleet}
        specs_by_id = {v.vehicle_id: v for v in free}
        demands = {d.key: d for d in instance.stops}
        planned = 0
        for route in plan.routes:
            etas = dict(zip(route.stop_keys, route.etas_min, strict=False))
            # the vehicle's whole wave: a trip's minutes include the charge it waits for
            # and the breaks it takes, which depend on the trips before it
            whole = timeline(
                instance,
                specs_by_id[route.vehicle_id],
                [[demands[k] for k in trip] for trip in route.trip_list],
            )
            for number, trip in enumerate(route.trip_list, start=1):
                # a vehicle's later trips are routes of their own, planned now and started
                # when it sets out again (telemetry), after the earlier ones finished
                route_id = domain.route_id_for(wave_id, route.vehicle_id, trip=number)
                line = timeline(
                    instance, specs_by_id[route.vehicle_id], [[demands[k] for k in trip]]
                )
                route_stops = [by_key[k] for k in trip]
                payload = RoutePlanned(
                    route_id=route_id,
                    hub_id=hub_id,
                    vehicle_id=route.vehicle_id,
                    city_id=hub.city_id,
                    vehicle_type=types[route.vehicle_id],
                    wave_id=wave_id,
                    hub_location=GeoPoint(lat=hub.lat, lon=hub.lon),
                    stops=[
                        RouteStop(
                            sequence=i,
                            booking_id=s.booking_id,
                            carrier_id=s.carrier_id,
                            stop_id=s.stop_id,
                            location=GeoPoint(lat=s.lat, lon=s.lon),
                            parcels=s.parcels,
                            weight_kg=s.weight_kg,
                            volume_m3=s.volume_m3,
                        )
                        for i, s in enumerate(route_stops, start=1)
                    ],
                    load_parcels=sum(s.parcels for s in route_stops),
                    load_kg=round(sum(s.weight_kg for s in route_stops), 3),
                    load_m3=round(sum(s.volume_m3 for s in route_stops), 4),
                    planned_km=round(line.km, 3),
                    planned_duration_min=round(whole.trip_minutes[number - 1], 1),
                    solver=plan.solver,
                    objective_value=round(plan.objective, 3),
                )
                if not await store.add_route(
                    uow.session,
                    id=route_id,
                    hub_id=hub_id,
                    wave_id=wave_id,
                    vehicle_id=route.vehicle_id,
                    planned=payload.model_dump(mode="json"),
                    planned_at=now,
                    status=(RouteStatus.PROPOSED if review else RouteStatus.PLANNED).value,
                ):
                    log.warning("route %s exists already: not planned twice", route_id)
                    continue
                if not review:
                    uow.emit(payload, key=hub_id, time=now)
                for key, s in zip(trip, route_stops, strict=True):
                    eta = now + timedelta(minutes=etas[key]) if key in etas else None
                    await store.set_stop(
                        uow.session,
                        s.booking_id,
                        s.stop_id,
                        now=now,
                        status=StopStatus.PLANNED,
                        route_id=route_id,
                        reason=None,
                        eta=eta,
                    )
                    if not review:
                        progress.emit(
                            uow,
                            s,
                            StopProgress.PLANNED,
                            now,
                            route_id=route_id,
                            vehicle_id=route.vehicle_id,
                            eta=eta,
                        )
                planned += 1
                self.changes.record(
                    uow.session,
                    hub_id,
                    "route_proposed" if review else "route_planned",
                    route_id=route_id,
                    vehicle_id=route.vehicle_id,
                    stops=len(route_stops),
                    km=round(line.km, 2),
                )
        await self._return_missed_windows(uow, hub_id, by_key, plan, now)
        reasons = {u.key: f"{u.code}: {u.message}" for u in plan.unserved}
        await self._set_reasons(uow, hub_id, waiting, reasons, now)
        log.info(
            "%s: wave %s (%s) planned %d routes, %d stops left, solver %s",
            hub_id,
            wave_id,
            why,
            planned,
            len(plan.unserved),
            plan.solver,
        )
        self.changes.record(
            uow.session,
            hub_id,
            "wave",
            wave_id=wave_id,
            why=why,
            routes=planned,
            left=len(plan.unserved),
            solver=plan.solver,
        )
        return planned

    async def release(self, uow: UnitOfWork, hub_id: str, now: datetime) -> list[str]:
        """The hub's proposed routes go out to the vehicles at ``now`` (the dispatcher's
        release): ``RoutePlanned`` and each stop's planned ETA, moved on by the time the
        proposal waited."""
        released: list[str] = []
        for route in sorted(
            await store.routes_of_hub(uow.session, hub_id, (RouteStatus.PROPOSED,)),
            key=lambda r: r.id,
        ):
            waited = now - route.planned_at
            await store.set_route(uow.session, route.id, status=RouteStatus.PLANNED, planned_at=now)
            uow.emit(RoutePlanned.model_validate(route.planned), key=hub_id, time=now)
            for s in await store.stops_of_route(uow.session, route.id):
                eta = s.eta + waited if s.eta is not None else None
                await store.set_stop(uow.session, s.booking_id, s.stop_id, now=now, eta=eta)
                progress.emit(
                    uow,
                    s,
                    StopProgress.PLANNED,
                    now,
                    route_id=route.id,
                    vehicle_id=route.vehicle_id,
                    eta=eta,
                )
            released.append(route.id)
            self.changes.record(uow.session, hub_id, "route_planned", route_id=route.id)
        return released

    async def _return_missed_windows(
        self,
        uow: UnitOfWork,
        hub_id: str,
        by_key: dict[str, store.StopRow],
        plan: Plan,
        now: datetime,
    ) -> None:
        """A stop whose time window has closed cannot be served any more: it goes back to
        its carrier (a pickup is not collected), instead of waiting for ever."""
        for unserved in plan.unserved:
            if unserved.code != "window_passed":
                continue
            s = by_key[unserved.key]
            reason = f"its time window closed before a vehicle could take it ({unserved.message})"
            await store.set_stop(
                uow.session,
                s.booking_id,
                s.stop_id,
                now=now,
                status=StopStatus.RETURNED,
                reason=reason,
            )
            uow.emit(
                StopReturned(
                    hub_id=hub_id,
                    booking_id=s.booking_id,
                    carrier_id=s.carrier_id,
                    stop_id=s.stop_id,
                    attempts=s.attempts,
                    reason=reason,
                ),
                key=hub_id,
                time=now,
            )
            progress.emit(uow, s, StopProgress.RETURNED, now, reason=reason)
            self.changes.record(
                uow.session, hub_id, "stop_returned", booking_id=s.booking_id, stop_id=s.stop_id
            )

    async def _set_reasons(
        self,
        uow: UnitOfWork,
        hub_id: str,
        waiting: list[store.StopRow],
        reasons: dict[str, str],
        now: datetime,
    ) -> None:
        changed = 0
        for s in waiting:
            reason = reasons.get(domain.stop_key(s.booking_id, s.stop_id))
            if reason is not None and reason != s.reason:
                await store.set_stop(uow.session, s.booking_id, s.stop_id, now=now, reason=reason)
                changed += 1
        if changed:
            self.changes.record(uow.session, hub_id, "reasons", stops=changed)
