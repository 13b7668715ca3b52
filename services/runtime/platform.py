"""Run several services (and the HTTP server) in one process: the embedded default, and
what `microhub serve` uses for a single service."""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
from collections.abc import Collection
from typing import Any

import uvicorn

from services.runtime.auth import ApiKeys
from services.runtime.http import create_app
from services.runtime.kafka import KafkaCluster
from services.runtime.service import Service
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

# name -> "module:Class"; a service whose module is not there yet is simply not offered.
SERVICE_CLASSES = {
    "booking": "services.booking.service:BookingService",
    "dispatch": "services.dispatch.service:DispatchService",
    "reporting": "services.reporting.service:ReportingService",
}


def available_services() -> list[str]:
    names = []
    for name, target in SERVICE_CLASSES.items():
        module = target.split(":")[0]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        names.append(name)
    return names


def service_class(name: str) -> type[Service]:
    if name not in SERVICE_CLASSES:
        raise ValueError(f"unknown service {name!r}; choose from {', '.join(SERVICE_CLASSES)}")
    module, cls = SERVICE_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        services: list[str] | None = None,
        http: bool = True,
        consuming: bool | Collection[str] = True,
        cluster: KafkaCluster | None = None,
        extra_routers: list[Any] | None = None,
    ) -> None:
        self.settings = settings
        self.names = services if services is not None else available_services()
        self.http = http
        self.consuming = consuming
        self.cluster = cluster
        # router factories beyond the services' own (e.g. services.web's pages)
        self.extra_routers = list(extra_routers or [])
        self._own_cluster = cluster is None
        self.services: dict[str, Service] = {}
        self.server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[Any] | None = None
        self.base_url: str | None = None

    async def start(self) -> Platform:
        if self.cluster is None:
            self.cluster = await KafkaCluster(self.settings).start()
        for name in self.names:
            # ``consuming`` may name the services that consume here; the others only
            # answer HTTP from their databases (their consumers run in another process)
            consuming = (
                self.consuming if isinstance(self.consuming, bool) else name in self.consuming
            )
            service = service_class(name)(
                self.settings, self.cluster.bootstrap, consuming=consuming
            )
            await service.start()
            self.services[name] = service
        if self.http:
            await self._start_http()
        return self

    async def _start_http(self) -> None:
        keys = ApiKeys.load(self.settings.api_keys_file)
        routers = [r for s in self.services.values() for r in s.http_routers()]
        routers += self.extra_routers
        app = create_app(keys=keys, routers=routers, health=self.health, ready=self.readiness)
        for service in self.services.values():
            attach = getattr(service, "attach_to_app", None)
            if attach is not None:
                attach(app)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.http_host, self.settings.http_port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self._server_task = asyncio.create_task(self.server.serve(sockets=[sock]))
        self.base_url = f"http://{self.settings.http_host}:{port}"
        while not self.server.started:
            if self._server_task.done():
                self._server_task.result()
            await asyncio.sleep(0.02)
        self.app = app

    def health(self) -> dict[str, Any]:
        report = {name: s.health() for name, s in self.services.items()}
        ok = all(s.started for s in self.services.values())
        return {"status": "ok" if ok else "starting", "services": report}

    async def readiness(self) -> dict[str, Any]:
        checks = await asyncio.gather(*(s.readiness() for s in self.services.values()))
        report = dict(zip(self.services, checks, strict=True))
        ok = bool(report) and all(c["ready"] for c in checks)
        return {"status": "ready" if ok else "not ready", "services": report}

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            if self._server_task is not None:
                await asyncio.gather(self._server_task, return_exceptions=True)
            self.server = None
        for service in reversed(list(self.services.values())):
            await service.stop()
        self.services.clear()
        if self._own_cluster and self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
