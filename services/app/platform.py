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
from services.runtime import metrics, tracing
from services.runtime.auth import ApiKeys, load_api_keys
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
        # router factories beyond the services' own and the pages (services.web)
        self.extra_routers = list(extra_routers or [])
        self._own_cluster = cluster is None
        self.services: dict[str, Service] = {}
        self._servers: list[tuple[uvicorn.Server, asyncio.Task[Any]]] = []
        self.keys: ApiKeys | None = None  # the public API's, loaded on start
        self.base_url: str | None = None  # the public API
        self.health_url: str | None = None  # the health port
        self._sockets: tuple[socket.socket | None, socket.socket | None] | None = None

    def reserve_ports(self) -> None:
        """Bind the ports now (raises :class:`PortUnavailable`): before anything else is
        touched, e.g. the demo's data. :meth:`start` does it when it was not done."""
        if self._sockets is not None:
            return
        # the keys first: no keys file, no API (fail closed) before anything is bound
        self.keys = load_api_keys(self.settings) if self.http else None
        api_socket = health_socket = None
        if self.http:
            api_socket = self._bind(self.settings.http_port, "the public API", "MICROHUB_HTTP_PORT")
        if self.health_port is not None:
            try:
                health_socket = self._bind(
                    self.health_port, "the health port", "MICROHUB_HEALTH_PORT or --health-port"
                )
            except PortUnavailable:
                if api_socket is not None:
                    api_socket.close()
                raise
        self._sockets = (api_socket, health_socket)

    async def start(self) -> Platform:
        # keys and ports first: a process that cannot serve stops before it joins groups
        self.reserve_ports()
        tracing.setup(f"microhub-{'+'.join(self.names)}")
        assert self._sockets is not None
        api_socket, health_socket = self._sockets
        sockets = [s for s in self._sockets if s is not None]
        try:
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
            self._sockets = None
            raise
        if api_socket is not None:
            self.app = self._public_app()
            self.base_url = await self._serve(self.app, api_socket)
        if health_socket is not None:
            app = create_health_app(
                health=self.health, ready=self.readiness, metrics_refresh=self.refresh_metrics
            )
            self.health_url = await self._serve(app, health_socket)
        return self

    def _public_app(self) -> Any:
        from services import web

        assert self.keys is not None  # loaded by start() when it serves the API
        routers = [r for s in self.services.values() for r in s.http_routers()]
        routers += [*web.routers(self.settings), *self.extra_routers]
        app = create_app(
            keys=self.keys,
            routers=routers,
            health=self.health,
            ready=self.readiness,
            title="microhub (DEMO MODE: public demo keys)"
            if self.settings.demo_mode
            else "microhub",
            max_body_bytes=self.settings.http_max_body_bytes,
            session_secret=self.settings.session_secret,
            session_https_only=self.settings.session_cookie_secure,
            session_max_age=self.settings.session_max_age_seconds,
            metrics_refresh=self.refresh_metrics,
        )
        web.install(app)
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

    async def refresh_metrics(self) -> None:
        await metrics.refresh(self.services.values())

    def health(self) -> dict[str, Any]:
        report = {name: s.health() for name, s in self.services.items()}
        ok = all(s.started for s in self.services.values())
        health: dict[str, Any] = {"status": "ok" if ok else "starting", "services": report}
        if self.settings.demo_mode:
            health["demo_mode"] = "the API accepts the public demo keys"
        return health

    async def readiness(self) -> dict[str, Any]:
        checks = await asyncio.gather(*(s.readiness() for s in self.services.values()))
        report = dict(zip(self.services, checks, strict=True))
        ok = bool(report) and all(c["ready"] for c in checks)
        return {"status": "ready" if ok else "not ready", "services": report}

    async def stop(self) -> None:
        # consumers first: a batch fetched while the HTTP servers wind down (uvicorn checks
        # its exit flag every 0.1 s) would otherwise be decided after the signal
        for service in self.services.values():
            service.stop_fetching()
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
