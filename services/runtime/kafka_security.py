"""The MICROHUB_KAFKA_* security settings in the three forms our Kafka clients take:
FastStream (the services), aiokafka (admin, replay, reconcile, the simulation) and
librdkafka (the ACL admin)."""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from services.runtime.settings import Settings


def security_from(settings: Settings) -> BaseSecurity | None:
    """FastStream security object from the MICROHUB_KAFKA_* settings."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in {"SSL", "SASL_SSL"}
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    mechanism = settings.kafka_sasl_mechanism
    if not (mechanism and settings.kafka_sasl_username and settings.kafka_sasl_password):
        raise ValueError(
            f"MICROHUB_KAFKA_SECURITY_PROTOCOL={protocol} needs MICROHUB_KAFKA_SASL_MECHANISM, "
            "MICROHUB_KAFKA_SASL_USERNAME and MICROHUB_KAFKA_SASL_PASSWORD"
        )
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[
        mechanism
    ]
    return cls(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        ssl_context=context,
        use_ssl=use_ssl,
    )


def aiokafka_security_kwargs(settings: Settings) -> dict[str, Any]:
    """The same security settings in the form plain aiokafka clients take."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"}:
        kwargs["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL"):
        kwargs |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    return kwargs


def librdkafka_security_config(settings: Settings) -> dict[str, Any]:
    """The same security settings for confluent-kafka (librdkafka) clients, such as the
    admin client ``microhub acls apply`` uses (aiokafka's admin has no SCRAM user API)."""
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"}:
        # "probe": the wheel's own OpenSSL looks for the system CAs where distributions keep them
        config["ssl.ca.location"] = settings.kafka_ssl_cafile or "probe"
    if protocol.startswith("SASL"):
        security_from(settings)  # the same clear error when a SASL setting is missing
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username,
            "sasl.password": settings.kafka_sasl_password,
        }
    return config
