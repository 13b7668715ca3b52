"""Configuration, only from environment variables (``MICROHUB_…``) and their defaults.

The defaults run everything on one machine: the embedded Kafka cluster and SQLite files
under ``.microhub/``. Production sets the bootstrap servers and one PostgreSQL URL per
service.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
DATA_DIR = Path(".microhub")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MICROHUB_",
        env_nested_delimiter="__",
        extra="ignore",
        # compose's `${VAR:-}` and empty ConfigMap entries mean "the default", not "".
        env_ignore_empty=True,
    )

    # --- Kafka -----------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        default=EMBEDDED,
        description="Comma-separated host:port list, or 'embedded' for the in-process "
        "librdkafka mock cluster.",
    )
    kafka_embedded_brokers: int = Field(default=3, ge=1, le=9)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    kafka_client_id: str = "microhub"
    topics_file: Path | None = Field(
        default=None,
        description="Topics as code (infra/topics.yaml format) applied on start and by "
        "`microhub topics apply`; default: the repository's infra/topics.yaml.",
    )
    kafka_consumer_max_batch: int = Field(
        default=500,
        ge=1,
        le=10000,
        description="Records a consumer has fetched are applied together, up to this many "
        "in one database transaction (1: a transaction per record).",
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=500,
        ge=0,
        le=60_000,
        description="Consumers' long-poll wait. A real broker answers as soon as data "
        "arrives; the embedded mock waits it out, so simulations set it low.",
    )
    kafka_fetch_min_bytes: int = Field(
        default=1,
        ge=1,
        le=1024 * 1024,
        description="A consumer's fetch is answered once this much is there, or after the "
        "long-poll wait. 1: as soon as anything is (each new record a fetch at high rates). "
        "More, with a wait of a few ms, makes the broker answer fewer, larger fetches "
        "(docs/booking-throughput.md: at 1 000 commands/s, 65536 with 5 ms took a third "
        "off the broker's request handling), and every record waits up to that wait.",
    )
    kafka_max_partition_fetch_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024 * 1024,
        le=256 * 1024 * 1024,
        description="Consumers fetch at most this much per partition and request. Above "
        "every consumed topic's max.message.bytes (infra/topics.yaml: 1 MiB), so a record "
        "batch fits one fetch; a larger one still comes, alone (Kafka returns the first "
        "batch whatever its size: KIP-74), and does not stall its partition.",
    )
    kafka_fetch_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024 * 1024,
        le=1024 * 1024 * 1024,
        description="Consumers fetch at most this much per request (all partitions).",
    )
    kafka_topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic and consumer group name, so that several "
        "environments (or test runs) can share one Kafka cluster.",
    )

    # --- databases (one per service; never shared) ------------------------------------
    data_dir: Path = DATA_DIR
    database_urls: dict[str, str] = Field(
        default_factory=dict,
        description="One database per service, by service name: "
        "MICROHUB_DATABASE_URLS__BOOKING=postgresql://…, …__DISPATCH, …__REPORTING (or "
        "MICROHUB_DATABASE_URLS as a JSON object). A service without an entry uses "
        "SQLite under MICROHUB_DATA_DIR.",
    )
    # Deprecated (one release): MICROHUB_<SERVICE>_DATABASE_URL, read when database_urls
    # has no entry for the service, with a warning.
    booking_database_url: str | None = Field(default=None, deprecated=True)
    dispatch_database_url: str | None = Field(default=None, deprecated=True)
    reporting_database_url: str | None = Field(default=None, deprecated=True)

    # --- HTTP ---------------------------------------------------------------------------
    http_host: str = Field(
        default="127.0.0.1", description="Where the public API and the health ports listen."
    )
    http_port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        description="The public API (`serve api`, `serve all`): every service's routes, "
        "/healthz and /readyz. 0: a free port (printed on start).",
    )
    http_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="The public API refuses a request body larger than this with 413, "
        "before reading it (a declared Content-Length) or as soon as a streamed body "
        "passes it. A command is at most 1 MiB on Kafka too.",
    )
    health_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="A consuming service without the API (`serve booking|dispatch|"
        "reporting`) answers only /healthz and /readyz, here. Default per service (its "
        "ServiceSpec.health_port: 8081, 8082, 8083), so that the three and `serve api` share "
        "one host; 0: a "
        "free port (printed on start). A second replica of a service on the same host "
        "needs a port of its own (`serve --health-port`).",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="YAML file mapping API keys (or their sha256) to scopes. Required to "
        "serve the API, except in demo mode (MICROHUB_DEMO_MODE), which uses the public "
        "demo keys shipped in the package.",
    )
    demo_mode: bool = Field(
        default=False,
        description="The public demo: the API accepts the demo keys (anyone may know them) "
        "and says so on every start and in /healthz. `microhub demo` sets it; never on a "
        "deployment others can reach. Outside demo mode the API refuses to start without "
        "MICROHUB_API_KEYS_FILE, or with the demo keys in it.",
    )

    # --- carriers (the gateway: ingress, egress, webhooks) ------------------------------
    carriers_file: Path | None = Field(
        default=None,
        description="The carrier registry as code (id, name, active), upserted on start by "
        "the gateway and applied by `microhub carriers apply`; default: the sample carriers "
        "of the demo (services/runtime/data/carriers.yaml).",
    )
    ingress_receipt_time: Literal["broker", "sender"] = Field(
        default="broker",
        description="What the ingress takes as a command's receipt time, the time booking "
        "decides with: 'broker', the broker's LogAppendTime on the carriers' topics (on a "
        "topic without it, the ingress's own clock), never the carrier's; 'sender', the "
        "envelope's time: only for a simulation, whose sender is the simulated world's "
        "clock (docs/simulation.md).",
    )
    webhook_retry_seconds: list[float] = Field(
        default=[5, 30, 120, 600, 1800, 3600, 10800, 21600],
        description="Waits between a webhook delivery's attempts (a JSON list); after the "
        "last, the delivery is marked failed (the carrier sees it in its delivery log and "
        "may have it resent).",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_secret_overlap_hours: float = Field(
        default=24,
        ge=0,
        description="After a secret is rotated, deliveries are signed with the new and the "
        "previous secret for this long, so the receiver can switch without losing any.",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Allow webhook URLs over plain http and to loopback or private "
        "addresses (tests, the demo). Off: https to public addresses only, so a carrier "
        "cannot make the platform call into its own network.",
    )

    # --- personal data --------------------------------------------------------------------
    personal_data_retention_days: int = Field(
        default=30,
        ge=1,
        description="Days after a booking's slot end (dispatch: after its stop is done or "
        "its route completed; outbox rows: after they were sent) when delivery coordinates "
        "are rounded to ~1 km and free text dropped in every service's database; reporting "
        "then keeps only what closed months' reports need (docs/privacy.md).",
    )
    retention_interval_seconds: float = Field(
        default=3600,
        ge=0,
        description="How often each service runs the purge (wall clock); 0: never. "
        "`microhub purge` runs it now.",
    )

    session_secret: str | None = Field(
        default=None,
        description="Signs the pages' sign-in cookie (services/web). Several API processes "
        "behind one address need the same value; unset, each process draws a random one "
        "when it starts (a restart signs everyone out).",
    )
    session_cookie_secure: bool = Field(
        default=False,
        description="Send the sign-in cookie over HTTPS only (set it behind TLS).",
    )
    session_max_age_seconds: int = Field(
        default=8 * 3600, ge=60, description="How long a page sign-in lasts."
    )

    # --- operations ---------------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="'json': one JSON object per log line (python-json-logger), with the "
        "trace and span ids of the current OpenTelemetry span.",
    )
    log_file: Path | None = Field(
        default=None, description="Log here instead of stderr (the demo's processes do)."
    )

    # --- behaviour ----------------------------------------------------------------------
    hubs_file: Path | None = Field(
        default=None, description="Hub catalogue loaded on start (default: the sample)."
    )
    emission_factors_file: Path | None = Field(
        default=None,
        description="Emission factors (same format as services/reporting/data/"
        "emission_factors.yaml) overriding the shipped defaults, globally or per city.",
    )
    max_clock_skew_seconds: int = Field(
        default=300,
        ge=0,
        description="A command whose envelope time is further than this from its Kafka "
        "record timestamp is rejected. 0 turns the check off: only for simulations and "
        "replays, whose event time is not the wall clock (a real Kafka refuses record "
        "timestamps more than an hour ahead, so such clients leave the record timestamp "
        "to the producer).",
    )
    no_show_grace_minutes: int = Field(default=30, ge=0)
    sqlite_inline_statements: bool = Field(
        default=False,
        description="SQLite only: run statements on the event loop's thread instead of "
        "aiosqlite's worker thread (about 5x less time per statement, but a statement "
        "waiting for another connection's lock blocks the process). For a process whose "
        "databases no other process writes, such as the demo's.",
    )
    outbox_batch_size: int = Field(
        default=1000,
        ge=1,
        # SQLite: the pass's mark lists each id as a parameter, at most 32 766 a statement
        le=10_000,
        description="Rows the outbox relay publishes per pass (1 to 10 000). At least a consumer's "
        "batch (`kafka_consumer_max_batch`): a decided batch is then published in one pass, "
        "one read, one wait for acks and one mark, where 200 took three of each for a "
        "batch of 500 (docs/booking-throughput.md).",
    )
    outbox_poll_interval_seconds: float = Field(
        default=0.05,
        gt=0,
        description="How often an idle outbox relay looks for unsent events where nothing "
        "wakes it: on SQLite, and on PostgreSQL while its LISTEN connection is lost.",
    )
    outbox_safety_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="PostgreSQL: the active relay is woken by a NOTIFY from every commit "
        "that enqueued events (whichever process made it); this slow poll is only a safety "
        "net behind it.",
    )
    outbox_publish_before_ack_seconds: float = Field(
        default=5.0,
        ge=0,
        description="A consumer publishes the events its record caused before committing "
        "the record's offset, waiting up to this long for Kafka's ack (then the relay "
        "retries in the background; the next batch is decided meanwhile); 0 commits at "
        "once and leaves publishing to the relay.",
    )
    gc_gen0_threshold: int = Field(
        default=50_000,
        ge=100,
        le=10_000_000,
        description="After start-up a service process freezes what it made (gc.freeze) "
        "and collects young objects every this many allocations instead of CPython's 700 "
        "(services/runtime/gc_tuning.py; docs/booking-throughput.md).",
    )
    sweep_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Wall-clock no-show sweep; 0 turns it off (replays, simulations).",
    )

    # --- dispatch -------------------------------------------------------------------------
    fleet_file: Path | None = Field(
        default=None, description="Fleet per hub loaded on start (default: the sample)."
    )
    dispatch_wave_min_stops: int = Field(
        default=20, ge=1, description="Plan a wave as soon as this many new stops wait."
    )
    dispatch_wave_interval_minutes: float = Field(
        default=10, gt=0, description="... or when this long (event time) passed since the last."
    )
    dispatch_solver_time_limit_seconds: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description="0: the greedy plans every wave. Otherwise PyVRP plans, stopped by "
        "iterations (not time: the same plan on a busy machine); a worker that has not "
        "answered this long plus 30 s later counts as hung and the greedy plans the wave.",
    )
    dispatch_solver_iterations: int = Field(
        default=1_500, ge=0, description="PyVRP's budget per wave (deterministic); 0: greedy."
    )
    dispatch_solver_seed: int = Field(default=1, ge=0, description="PyVRP's random seed.")
    dispatch_solver_in_subprocess: bool = Field(
        default=True,
        description="Solve in a worker process: the solver holds the GIL while it searches, "
        "which would stall every consumer and HTTP request of this process.",
    )
    dispatch_wave_nudge_seconds: float = Field(
        default=60,
        ge=0,
        description="Wall-clock check for due waves on quiet hubs; 0 turns it off (replays).",
    )

    @model_validator(mode="after")
    def _fetch_sizes(self) -> Settings:
        if self.kafka_fetch_max_bytes < self.kafka_max_partition_fetch_bytes:
            raise ValueError(
                "MICROHUB_KAFKA_FETCH_MAX_BYTES must be at least "
                "MICROHUB_KAFKA_MAX_PARTITION_FETCH_BYTES"
            )
        return self

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must be 'embedded' or a comma-separated host:port list")
        return value

    @property
    def kafka_is_embedded(self) -> bool:
        return self.kafka_bootstrap_servers == EMBEDDED

    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]

    def topic(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}{name}"

    def group(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}microhub-{name}"

    def database_url(self, service: str) -> str:
        if service in self.database_urls:
            return self.database_urls[service]
        old = f"{service}_database_url"
        legacy = self.__dict__.get(old)  # not getattr: that warns on every read
        if legacy:
            warnings.warn(
                f"MICROHUB_{old.upper()} is deprecated and will be removed in the next "
                f"release: use MICROHUB_DATABASE_URLS__{service.upper()}",
                DeprecationWarning,
                stacklevel=2,
            )
            log.warning(
                "MICROHUB_%s is deprecated: use MICROHUB_DATABASE_URLS__%s",
                old.upper(),
                service.upper(),
            )
            return str(legacy)
        return f"sqlite+aiosqlite:///{self.data_dir / f'{service}.db'}"
