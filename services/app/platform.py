"""Run several services (and the HTTP server) in one process: the embedded default, and
what `microhub serve` uses for a single service.

A process serves the public API (every service's routes, on MICROHUB_HTTP_PORT) or, when
it only consumes, a health port (``/healthz``, ``/readyz``) for its orchestrator: several
such processes then share a host with the API process without fighting over one port."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Collection
from typing import Any

import uvicorn

from services.app.registry import service_class, service_names
from services.runtime.auth import ApiKeys
from services.runtime.http import create_app, create_health_app
from services.runtime.kafka import KafkaCluster
from services.runtime.service import Service
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


def health_port_for(settings: Settings, service: str) -> int:
    """Where `serve <service>` answers /healthz and /readyz: MICROHUB_HEALTH_PORT, else the
    service's own default (its spec), so that the services and the API share a host."""
    if settings.health_port is not None:
        return settings.health_port
    return service_class(service).spec.health_port


class PortUnavailable(RuntimeError):
    """A port to serve on is taken (another process) or not ours to bind."""


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        services: list[str] | None = None,
        http: bool = True,
        health_port: int | None = None,
        consuming: bool | Collection[str] = True,
        cluster: KafkaCluster | None = None,
        extra_routers: list[Any] | None = None,
    ) -> None:
        """``http``: serve the public API on MICROHUB_HTTP_PORT; ``health_port``: serve
        only /healthz and /readyz there (0: a free port)."""
        self.settings = settings
        self.names = services if services is not None else service_names()
        self.http = http
        self.health_port = health_port
        self.consuming = consuming
        self.cluster = cluster
        # router factories beyond the services' own (e.g. services.web's pages)
        self.extra_routers = list(extra_routers or [])
        self._own_cluster = cluster is None
        self.services: dict[str, Service] = {}
        self._servers: list[tuple[uvicorn.Server, asyncio.Task[Any]]] = []
        self.base_url: str | None = None  # the public API
        self.health_url: str | None = None  # the health port

    async def start(self) -> Platform:
        # ports first: a process that cannot serve stops before it joins consumer groups
        sockets: list[socket.socket] = []
        try:
            api_socket = health_socket = None
            if self.http:
                api_socket = self._bind(
                    self.settings.http_port, "the public API", "MICROHUB_HTTP_PORT"
                )
                sockets.append(api_socket)
            if self.health_port is not None:
                health_socket = self._bind(
                    self.health_port, "the health port", "MICROHUB_HEALTH_PORT or --health-port"
                )
                sockets.append(health_socket)
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
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        if api_socket is not None:
            self.app = self._public_app()
            self.base_url = await self._serve(self.app, api_socket)
        if health_socket is not None:
            app = create_health_app(health=self.health, ready=self.readiness)
            self.health_url = await self._serve(app, health_socket)
        return self

    def _public_app(self) -> Any:
        keys = ApiKeys.load(self.settings.api_keys_file)
        routers = [r for s in self.services.values() for r in s.http_routers()]
        routers += self.extra_routers
        app = create_app(
            keys=keys,
            routers=routers,
            health=self.health,
            ready=self.readiness,
            max_body_bytes=self.settings.http_max_body_bytes,
        )
        for service in self.services.values():
            attach = getattr(service, "attach_to_app", None)
            if attach is not None:
                attach(app)
        return app

    def _bind(self, port: int, what: str, setting: str) -> socket.socket:
        host = self.settings.http_host
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise PortUnavailable(
                f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc} "
                f"(another process has it? choose another with {setting}; 0 picks a free one)"
            ) from exc
        return sock

    async def _serve(self, app: Any, sock: socket.socket) -> str:
        """Serve ``app`` on the bound ``sock``; returns its base URL."""
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        self._servers.append((server, task))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        return f"http://{self.settings.http_host}:{port}"

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
        for server, _ in self._servers:
            server.should_exit = True
        await asyncio.gather(*(task for _, task in self._servers), return_exceptions=True)
        self._servers.clear()
        for service in reversed(list(self.services.values())):
            await service.stop()
        self.services.clear()
        if self._own_cluster and self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
