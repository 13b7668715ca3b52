"""Each stop's progress for its carrier (``StopUpdated`` on the dispatch events topic):
planned with its ETA, a new ETA when its route runs late, delivered or collected with the
proof, failed, returned, a collected pickup back at the hub."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts.booking import StopKind, TimeWindow
from contracts.dispatch import StopProgress, StopUpdated
from contracts.fleet import ProofOfDelivery
from services.dispatch.tables import StopRow
from services.runtime.uow import UnitOfWork

# A route this much behind (or ahead of) its plan at a stop moves the ETAs of the stops
# after it, and their carriers hear of it.
ETA_SHIFT = timedelta(minutes=5)


def window_of(stop: StopRow) -> TimeWindow | None:
    if stop.window_start is None or stop.window_end is None:
        return None
    return TimeWindow(start=stop.window_start, end=stop.window_end)


def emit(
    uow: UnitOfWork,
    stop: StopRow,
    status: StopProgress,
    now: datetime,
    *,
    route_id: str | None = None,
    vehicle_id: str | None = None,
    eta: datetime | None = None,
    proof: ProofOfDelivery | dict[str, Any] | None = None,
    reason: str | None = None,
    attempts: int | None = None,
) -> None:
    if isinstance(proof, dict):
        proof = ProofOfDelivery.model_validate(proof)
    uow.emit(
        StopUpdated(
            hub_id=stop.hub_id,
            carrier_id=stop.carrier_id,
            booking_id=stop.booking_id,
            stop_id=stop.stop_id,
            kind=StopKind(stop.kind),
            status=status,
            at=now,
            route_id=route_id if route_id is not None else stop.route_id,
            vehicle_id=vehicle_id,
            eta=eta,
            window=window_of(stop),
            proof=proof,
            reason=reason,
            attempts=stop.attempts if attempts is None else attempts,
        ),
        key=stop.hub_id,
        time=now,
    )
