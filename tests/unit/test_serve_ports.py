"""Which ports `microhub serve` takes: the public API on MICROHUB_HTTP_PORT, each
consuming service its own health port, so a whole deployment fits on one host."""

from __future__ import annotations

from services.app.platform import health_port_for
from services.app.registry import service_names
from services.runtime.settings import Settings


def test_every_service_has_its_own_default_health_port_beside_the_api() -> None:
    settings = Settings(health_port=None, http_port=8000)
    ports = [health_port_for(settings, name) for name in service_names()]
    assert len(set(ports)) == len(ports) == len(service_names())
    assert settings.http_port not in ports


def test_one_health_port_setting_applies_to_every_service() -> None:
    """Pods and containers have a network of their own: one port for every probe."""
    settings = Settings(health_port=8081)
    assert {health_port_for(settings, name) for name in service_names()} == {8081}
    assert health_port_for(Settings(health_port=0), "dispatch") == 0
