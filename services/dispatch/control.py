"""A hub's dispatcher in control: hold a stop out of the waves, pin it to a vehicle, move
it between proposed routes, re-plan, release a proposed wave. Each action is one
transaction on dispatch's database (the hub's row locked, as every event of the hub
takes it) that also writes a ``DispatcherAction`` event (who and why) to the outbox, so
the audit trail travels with the dispatch events. Any process that serves HTTP can act
(it is dispatch's database and outbox, like the fleet admin).

Time: a person acts now. In a deployment the hub's clock (its latest event time) is now
too; a simulation runs ahead of the wall clock, so an action takes the later of the two.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from contracts.common import GeoPoint
from contracts.dispatch import DispatcherAction, DispatcherActionKind, RoutePlanned
from services.dispatch import domain, store
from services.dispatch.changes import ChangeLog
from services.dispatch.domain import RouteStatus, StopStatus
from services.dispatch.solver import (
    Plan,
    PlannedRoute,
    Point,
    StopDemand,
    VehicleSpec,
    WaveInstance,
    check_plan,
    timeline,
)
from services.dispatch.waves import WavePlanning, stop_demand
from services.runtime.uow import UnitOfWork


class Refused(Exception):
    """The action cannot be applied as asked (409), with what stands in the way."""


class NotFound(Exception):
    """No such stop, route or vehicle at this hub (404)."""


@dataclass(frozen=True)
class Action:
    kind: DispatcherActionKind
    by: str
    reason: str
    booking_id: str | None = None
    stop_id: str | None = None
    vehicle_id: str | None = None
    route_id: str | None = None


class DispatcherControl:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], AbstractAsyncContextManager[UnitOfWork]],
        waves: WavePlanning,
        changes: ChangeLog,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._unit_of_work = unit_of_work
        self.waves = waves
        self.changes = changes
        self.clock = clock

    async def apply(self, hub_id: str, action: Action) -> DispatcherAction:
        async with self._unit_of_work() as uow:
            await store.lock_hub(uow.session, hub_id)
            hub = await store.get_hub(uow.session, hub_id)
            if hub is None:
                raise NotFound(f"dispatch knows no hub {hub_id!r} yet")
            now = max(self.clock(), hub.clock or self.clock())
            handler = {
                DispatcherActionKind.HOLD: self._hold,
                DispatcherActionKind.UNHOLD: self._unhold,
                DispatcherActionKind.PIN: self._pin,
                DispatcherActionKind.UNPIN: self._unpin,
                DispatcherActionKind.MOVE: self._move,
                DispatcherActionKind.REPLAN: self._replan,
                DispatcherActionKind.RELEASE: self._release,
            }[action.kind]
            event = await handler(uow, hub, action, now)
            uow.emit(event, key=hub_id, time=now)
            self.changes.record(
                uow.session,
                hub_id,
                "dispatcher",
                action=action.kind.value,
                by=action.by,
                reason=action.reason,
                booking_id=action.booking_id,
                stop_id=action.stop_id,
                vehicle_id=action.vehicle_id,
                route_id=event.route_id,
            )
        return event

    # ----------------------------------------------------------------------- helpers ---

    @staticmethod
    def _event(
        hub: store.HubRow, action: Action, now: datetime, routes: list[str] | None = None
    ) -> DispatcherAction:
        return DispatcherAction(
            hub_id=hub.id,
            action=action.kind,
            by=action.by,
            reason=action.reason,
            at=now,
            booking_id=action.booking_id,
            stop_id=action.stop_id,
            vehicle_id=action.vehicle_id,
            route_id=action.route_id,
            routes=routes or [],
        )

    @staticmethod
    async def _stop(uow: UnitOfWork, hub: store.HubRow, action: Action) -> store.StopRow:
        if not action.booking_id or not action.stop_id:
            raise Refused(f"{action.kind.value} names a stop: booking_id and stop_id")
        stop = await store.get_stop(uow.session, action.booking_id, action.stop_id)
        if stop is None or stop.hub_id != hub.id:
            raise NotFound(f"hub {hub.id} has no stop {action.booking_id}/{action.stop_id}")
        return stop

    # ----------------------------------------------------------------------- actions ---

    async def _hold(
        self, uow: UnitOfWork, hub: store.HubRow, action: Action, now: datetime
    ) -> DispatcherAction:
        stop = await self._stop(uow, hub, action)
        if stop.status not in (StopStatus.EXPECTED, StopStatus.WAITING):
            raise Refused(f"stop is {stop.status.value}: only an expected or waiting stop is held")
        await store.set_stop(
            uow.session,
            stop.booking_id,
            stop.stop_id,
            now=now,
            status=StopStatus.HELD,
            reason=f"held by {action.by}: {action.reason}",
        )
        return self._event(hub, action, now)

    async def _unhold(
        self, uow: UnitOfWork, hub: store.HubRow, action: Action, now: datetime
    ) -> DispatcherAction:
        stop = await self._stop(uow, hub, action)
        if stop.status is not StopStatus.HELD:
            raise Refused(f"stop is {stop.status.value}, not held")
        # back in the queue as a new stop (it counts towards the next wave), or expected
        # again if its consignment has not checked in yet
        checked_in = stop.queued_at is not None
        await store.set_stop(
            uow.session,
            stop.booking_id,
            stop.stop_id,
            now=now,
            status=StopStatus.WAITING if checked_in else StopStatus.EXPECTED,
            queued_at=now if checked_in else None,
            reason=f"released from hold by {action.by}",
        )
        return self._event(hub, action, now)

    async def _pin(
        self, uow: UnitOfWork, hub: store.HubRow, action: Action, now: datetime
    ) -> DispatcherAction:
        stop = await self._stop(uow, hub, action)
        if not action.vehicle_id:
            raise Refused("pin names a vehicle: vehicle_id")
        if await store.vehicle_hub(uow.session, action.vehicle_id) != hub.id:
            raise NotFound(f"hub {hub.id} has no vehicle {action.vehicle_id}")
        if stop.status in (StopStatus.ON_ROUTE, StopStatus.DELIVERED, StopStatus.RETURNED):
            raise Refused(f"stop is {stop.status.value}: too late to pin it")
        await store.set_stop(
            uow.session, stop.booking_id, stop.stop_id, now=now, pinned_vehicle=action.vehicle_id
        )
        return self._event(hub, action, now)

    async def _unpin(
        self, uow: UnitOfWork, hub: store.HubRow, action: Action, now: datetime
    ) -> DispatcherAction:
        stop = await self._stop(uow, hub, action)
        await store.set_stop(
            uow.session, stop.booking_id, stop.stop_id, now=now, pinned_vehicle=None
        )
        return self._event(hub, action, now)

    async def _replan(
        self, uow: UnitOfWork, hub: store.HubRow, action: Action, now: datetime
    ) -> DispatcherAction:
        """Drop the hub's proposed routes (their stops wait again, pins kept) and plan a
        wave now. Released routes stay as they are: their vehicles have them."""
        dropped = []
        for route in await store.routes_of_hub(uow.session, hub.id, (RouteStatus.PROPOSED,)):
            for s in await store.stops_of_route(uow.session, route.id):
                await store.set_stop(
                    uow.session,
                    s.booking_id,
                    s.stop_id,
                    now=now,
                    status=StopStatus.WAITING,
                    route_id=None,
                    eta=None,
                    reason=f"re-planned by {action.by}",
                )
            await store.delete_route(uow.session, route.id)
            dropped.append(route.id)
        await self.waves.plan(uow, hub, now, f"re-plan by {action.by}: {action.reason}")
        planned = await store.routes_of_hub(
            uow.session, hub.id, (RouteStatus.PROPOSED, RouteStatus.PLANNED)
        )
        return self._event(
            hub, action, now, routes=sorted(r.id for r in planned if r.planned_at == now)
        )

    async def _release(
        self, uow: UnitOfWork, hub: store.HubRow, action: Action, now: datetime
    ) -> DispatcherAction:
        released = await self.waves.release(uow, hub.id, now)
        if not released:
            raise Refused(f"hub {hub.id} has no proposed routes to release")
        return self._event(hub, action, now, routes=released)

    async def _move(
        self, uow: UnitOfWork, hub: store.HubRow, action: Action, now: datetime
    ) -> DispatcherAction:
        """A stop from its proposed route to another proposed route, inserted where it
        adds the fewest kilometres; refused when either route would break a limit."""
        stop = await self._stop(uow, hub, action)
        if not action.route_id:
            raise Refused("move names the route to move the stop to: route_id")
        source = await store.get_route(uow.session, stop.route_id) if stop.route_id else None
        target = await store.get_route(uow.session, action.route_id)
        if target is None or target.hub_id != hub.id:
            raise NotFound(f"hub {hub.id} has no route {action.route_id}")
        if source is None or source.status is not RouteStatus.PROPOSED:
            raise Refused("only a stop on a proposed route moves (review the wave, then release)")
        if target.status is not RouteStatus.PROPOSED:
            raise Refused(f"route {target.id} is {target.status.value}, not proposed")
        if source.id == target.id:
            raise Refused(f"the stop is on route {target.id} already")
        if stop.pinned_vehicle and stop.pinned_vehicle != target.vehicle_id:
            raise Refused(f"the stop is pinned to {stop.pinned_vehicle}: unpin it first")
        fleet = {v.config.id: v for v in await store.fleet_of(uow.session, hub.id)}
        moved_key = domain.stop_key(stop.booking_id, stop.stop_id)
        planned_at = source.planned_at
        stops_of = {r.id: await store.stops_of_route(uow.session, r.id) for r in (source, target)}
        demand = {
            domain.stop_key(s.booking_id, s.stop_id): stop_demand(
                domain.stop_key(s.booking_id, s.stop_id), s, planned_at
            )
            for rows in stops_of.values()
            for s in rows
        }

        def order(route: store.RouteRow) -> list[str]:
            by_id = {(s.booking_id, s.stop_id): s for s in stops_of[route.id]}
            return [
                domain.stop_key(p["booking_id"], p["stop_id"])
                for p in route.planned["stops"]
                if (p["booking_id"], p["stop_id"]) in by_id
            ]

        source_keys = [k for k in order(source) if k != moved_key]
        target_keys = order(target)
        instance = domain.wave_instance(
            hub_location=Point(hub.lat, hub.lon),
            stops=list(demand.values()),
            vehicles=[],
            circuity=self.waves.fleet.circuity_of(hub.city_id),
            service_minutes_per_stop=self.waves.fleet.service_minutes(hub.id),
            load_minutes_per_trip=self.waves.fleet.load_minutes(hub.id),
        )
        specs = {}
        for vehicle_id in (source.vehicle_id, target.vehicle_id):
            state = fleet[vehicle_id]
            spec = domain.vehicle_spec(
                replace(state, busy_route=None), now=planned_at, timezone=hub.timezone
            )
            if spec is None:
                raise Refused(f"vehicle {vehicle_id} is off shift now")
            specs[vehicle_id] = replace(spec, max_trips=1)
        instance = replace(instance, vehicles=list(specs.values()))
        best: tuple[float, list[str]] | None = None
        for position in range(len(target_keys) + 1):
            candidate = [*target_keys[:position], moved_key, *target_keys[position:]]
            line = timeline(instance, specs[target.vehicle_id], [[demand[k] for k in candidate]])
            if best is None or line.km < best[0]:
                best = (line.km, candidate)
        assert best is not None
        new_target = best[1]
        routes = [
            _planned_route(instance, specs[source.vehicle_id], source_keys, demand),
            _planned_route(instance, specs[target.vehicle_id], new_target, demand),
        ]
        routes = [r for r in routes if r.stop_keys]
        problems = check_plan(instance, Plan(routes, [], "dispatcher", 0.0))
        if problems:
            raise Refused("the move breaks a limit: " + "; ".join(problems))
        by_key = {
            domain.stop_key(s.booking_id, s.stop_id): s for rows in stops_of.values() for s in rows
        }
        for route, keys in ((source, source_keys), (target, new_target)):
            await self._rewrite(
                uow, route, keys, by_key, demand, instance, specs[route.vehicle_id], planned_at
            )
        return self._event(hub, action, now)

    async def _rewrite(
        self,
        uow: UnitOfWork,
        route: store.RouteRow,
        keys: list[str],
        by_key: dict[str, store.StopRow],
        demand: dict[str, StopDemand],
        instance: WaveInstance,
        spec: VehicleSpec,
        planned_at: datetime,
    ) -> None:
        if not keys:  # the route lost its only stop: it is gone
            await store.delete_route(uow.session, route.id)
            return
        line = timeline(instance, spec, [[demand[k] for k in keys]])
        planned = RoutePlanned.model_validate(route.planned)
        old = {(s.booking_id, s.stop_id): s for s in planned.stops}
        stops = []
        for i, key in enumerate(keys, start=1):
            row = by_key[key]
            previous = old.get((row.booking_id, row.stop_id))
            if previous is not None:
                stops.append(previous.model_copy(update={"sequence": i}))
            else:
                stops.append(
                    planned.stops[0].model_copy(
                        update={
                            "sequence": i,
                            "booking_id": row.booking_id,
                            "carrier_id": row.carrier_id,
                            "stop_id": row.stop_id,
                            "location": GeoPoint(lat=row.lat, lon=row.lon),
                            "parcels": row.parcels,
                            "weight_kg": row.weight_kg,
                            "volume_m3": row.volume_m3,
                        }
                    )
                )
        rows = [by_key[k] for k in keys]
        payload = RoutePlanned.model_validate(
            {
                **planned.model_dump(mode="json"),
                "stops": [s.model_dump(mode="json") for s in stops],
                "load_parcels": sum(r.parcels for r in rows),
                "load_kg": round(sum(r.weight_kg for r in rows), 3),
                "load_m3": round(sum(r.volume_m3 for r in rows), 4),
                "planned_km": round(line.km, 3),
                "planned_duration_min": round(line.minutes, 1),
            }
        )
        await store.set_route(uow.session, route.id, planned=payload.model_dump(mode="json"))
        for key, eta_min in zip(keys, line.etas_min, strict=True):
            row = by_key[key]
            await store.set_stop(
                uow.session,
                row.booking_id,
                row.stop_id,
                now=planned_at,
                route_id=route.id,
                eta=planned_at + timedelta(minutes=eta_min),
            )


def _planned_route(
    instance: WaveInstance, spec: VehicleSpec, keys: list[str], demand: dict[str, StopDemand]
) -> PlannedRoute:
    stops = [demand[k] for k in keys]
    line = timeline(instance, spec, [stops])
    return PlannedRoute(
        vehicle_id=spec.vehicle_id,
        stop_keys=tuple(keys),
        km=line.km,
        duration_min=line.minutes,
        parcels=sum(s.parcels for s in stops),
        weight_kg=sum(s.weight_kg for s in stops),
        volume_m3=sum(s.volume_m3 for s in stops),
        etas_min=line.etas_min,
    )
