"""Which ports `microhub serve` takes: the public API on MICROHUB_HTTP_PORT, each
consuming service its own health port, so a whole deployment fits on one host."""

from __future__ import annotations

from services.runtime.platform import available_services
from services.runtime.settings import DEFAULT_HEALTH_PORTS, Settings


def test_every_service_has_its_own_default_health_port_beside_the_api() -> None:
    settings = Settings(health_port=None, http_port=8000)
    ports = [settings.health_port_of(name) for name in available_services()]
    assert set(DEFAULT_HEALTH_PORTS) == set(available_services())
    assert len(set(ports)) == len(ports)
    assert settings.http_port not in ports


def test_one_health_port_setting_applies_to_every_service() -> None:
    """Pods and containers have a network of their own: one port for every probe."""
    settings = Settings(health_port=8081)
    assert {settings.health_port_of(name) for name in available_services()} == {8081}
    assert Settings(health_port=0).health_port_of("dispatch") == 0
