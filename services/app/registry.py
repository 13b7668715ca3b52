"""The services of this platform. Adding a service is one line here (and its package);
everything else — `serve` targets, migrations, consumers, AsyncAPI, KEDA, the
simulation's consumer groups — is derived from each one's ``spec``."""

from __future__ import annotations

from services.booking.service import BookingService
from services.dispatch.service import DispatchService
from services.gateway.service import GatewayService
from services.reporting.service import ReportingService
from services.runtime.service import Service
from services.runtime.wiring import ServiceSpec

SERVICES: tuple[type[Service], ...] = (
    BookingService,
    DispatchService,
    ReportingService,
    GatewayService,
)


def service_names() -> list[str]:
    return [cls.spec.name for cls in SERVICES]


def service_class(name: str) -> type[Service]:
    for cls in SERVICES:
        if cls.spec.name == name:
            return cls
    raise ValueError(f"unknown service {name!r}; choose from {', '.join(service_names())}")


def specs() -> list[ServiceSpec]:
    return [cls.spec for cls in SERVICES]
