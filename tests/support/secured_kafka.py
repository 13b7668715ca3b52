"""An Apache Kafka with SASL/SCRAM and the StandardAuthorizer, and the principals of
``infra/acls.yaml`` on it: settings and client keywords for each, so a test can run a
service, or a plain client, as exactly that principal.

Every test takes its own topic prefix; ``acls apply`` prefixes users as well, so each
test also has its own users and ACLs on the shared cluster.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.runtime.acl_admin import apply_acls
from services.runtime.acls import AclPlan, Principal, load_acls, user_name
from services.runtime.apache_kafka import ADMIN_USER, ApacheKafka
from services.runtime.kafka_security import aiokafka_security_kwargs
from services.runtime.settings import Settings

# A user the rig creates with no ACL at all. Its password holds what the broker's format
# tool cannot carry, so the rig's user creation is exercised too.
INTRUDER = "intruder"
INTRUDER_PASSWORD = 'in,tru]der"pw'


@dataclass
class SecuredKafka:
    apache: ApacheKafka
    principals: list[Principal]

    @property
    def bootstrap(self) -> list[str]:
        return self.apache.bootstrap_servers

    @staticmethod
    def new_prefix() -> str:
        return f"t{uuid.uuid4().hex[:10]}."

    def password(self, principal: str) -> str:
        # not the same for two principals, and with characters that need care
        return f"{principal}-pw,]{principal[::-1]}"

    def passwords(self) -> dict[str, str]:
        return {p.key: self.password(p.key) for p in self.principals}

    def principal(self, key: str) -> Principal:
        return next(p for p in self.principals if p.key == key)

    def credentials(self, principal: str, prefix: str) -> tuple[str, str]:
        """(user, password) of a file principal, the rig's ``admin`` or ``intruder``."""
        if principal in (ADMIN_USER, INTRUDER):
            return principal, self.apache.users[principal]  # type: ignore[index]
        return user_name(self.principal(principal), prefix), self.password(principal)

    def settings(self, principal: str, prefix: str, **overrides: Any) -> Settings:
        """Settings for a process that runs as ``principal`` (see ``credentials``)."""
        user, password = self.credentials(principal, prefix)
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": ",".join(self.bootstrap),
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": user,
            "kafka_sasl_password": password,
            "kafka_topic_prefix": prefix,
            "sweep_interval_seconds": 3600,
            "outbox_poll_interval_seconds": 0.05,
            # tests live in simulated time; clients leave the record timestamp to the producer
            "max_clock_skew_seconds": 0,
        }
        return Settings(**(values | overrides))

    def security(self, principal: str, prefix: str) -> dict[str, Any]:
        """aiokafka's keywords for a client that is ``principal``."""
        return aiokafka_security_kwargs(self.settings(principal, prefix))

    def apply(self, prefix: str, *, file: Path | None = None, **kwargs: Any) -> AclPlan:
        """``microhub acls apply`` as the admin, with every principal's password."""
        principals = load_acls(file) if file is not None else self.principals
        return apply_acls(
            self.settings(ADMIN_USER, prefix),
            self.bootstrap,
            principals=principals,
            passwords=kwargs.pop("passwords", self.passwords()),
            **kwargs,
        )
