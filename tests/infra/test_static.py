"""Static checks of infra/: what can be verified here without a Docker engine or a
Kubernetes cluster.

- infra/compose.yaml against the compose-spec JSON Schema (as vendored by the
  check-jsonschema package, offline);
- every Kubernetes manifest against the Kubernetes OpenAPI schemas bundled in the
  kubernetes-validate package (strict: unknown fields fail), and the CRD kinds (KEDA,
  Strimzi) against hand-written subsets in tests/infra/schemas/;
- every MICROHUB_ setting wired in compose and in the ConfigMap/Secret, every Deployment
  and the Job reading both;
- infra/topics.yaml agrees with contracts/topics.py; the Strimzi topics are generated
  from it and current; KEDA's ceiling is the partition count.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from contracts.topics import CARRIER_COMMANDS, CARRIER_TOPICS, TOPICS, all_topic_names
from services.app.cli import serve_targets
from services.app.registry import service_class, service_names
from services.runtime.carriers import SAMPLE_CARRIERS_FILE, load_carriers
from services.runtime.carriers import strimzi_manifest as carriers_manifest
from services.runtime.settings import Settings
from services.runtime.topics import load_carrier_topics, load_topics, strimzi_manifest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
SCHEMAS = Path(__file__).parent / "schemas"
KUBERNETES_VERSION = "1.30"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication.json",
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "strimzi-kafkatopic.json",
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): "strimzi-kafkauser.json",
}
# MICROHUB_ names in the code that are not server settings, and why they need no wiring
NOT_SETTINGS = {
    "MICROHUB_LIBRDKAFKA": "path override for the embedded (development) broker only",
    "MICROHUB_URL": "client side: `microhub queue` talks to a running API",
    "MICROHUB_API_KEY": "client side: `microhub queue`'s key",
    "MICROHUB_APACHE_KAFKA_CACHE": "development broker (`microhub kafka apache`): jar cache",
    "MICROHUB_APACHE_KAFKA_JVM_OPTS": "development broker (`microhub kafka apache`): JVM flags",
}


def setting_names() -> set[str]:
    """Every setting's variable; a mapping by service (database_urls) is one variable per
    service (MICROHUB_DATABASE_URLS__BOOKING, …); deprecated ones are wired nowhere."""
    names = set()
    for name, field in Settings.model_fields.items():
        if field.deprecated:
            continue
        if name == "database_urls":
            names |= {f"MICROHUB_DATABASE_URLS__{s.upper()}" for s in service_names()}
        else:
            names.add(f"MICROHUB_{name.upper()}")
    return names


def manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def config_map() -> dict[str, Any]:
    """The ConfigMap every pod reads its settings from."""
    [config] = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "microhub-config"]
    return config


def compose() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


# --- compose --------------------------------------------------------------------------


def compose_validator() -> jsonschema.protocols.Validator:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    # the schema declares its draft (2020-12: unevaluatedProperties); use that one
    return jsonschema.validators.validator_for(schema)(schema)


def test_compose_file_matches_the_compose_spec() -> None:
    compose_validator().validate(compose())


def test_a_broken_compose_file_fails_validation() -> None:
    broken = compose()
    broken["services"]["booking"]["helthcheck"] = broken["services"]["booking"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):
        compose_validator().validate(broken)


def test_compose_runs_every_service_after_the_migration_job_on_healthy_dependencies() -> None:
    services = compose()["services"]
    served = {s["command"][1] for s in services.values() if s.get("command", [""])[0] == "serve"}
    assert served == {*service_names(), "api"}
    assert served <= set(serve_targets())
    assert "microhub migrate && microhub topics apply" in services["migrate"]["entrypoint"][-1]
    for name in served:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert (
            depends["kafka"]["condition"] == depends["postgres"]["condition"] == "service_healthy"
        )
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert "/readyz" in probe
        # `serve api` answers on the public port, a consuming service only on its health port
        port_setting = "MICROHUB_HTTP_PORT" if name == "api" else "MICROHUB_HEALTH_PORT"
        assert f"127.0.0.1:{services[name]['environment'][port_setting]}/" in probe, name
    assert set(services["api"]["ports"]) == {"8000:8000"}
    assert all("ports" not in services[name] for name in service_names())
    for name in ("kafka", "postgres", "kafka-2", "kafka-3"):
        assert services[name]["healthcheck"]["test"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert "profiles" not in services["kafka"]
    assert services["kafka-2"]["profiles"] == services["kafka-3"]["profiles"] == ["kafka-cluster"]


def test_every_setting_is_wired_in_compose() -> None:
    services = compose()["services"]
    for name in [*service_names(), "api", "migrate"]:
        environment = services[name]["environment"]
        assert set(environment) == setting_names(), name


def _shipped(name: str) -> list[int]:
    """The value of MICROHUB_<name> in the ConfigMap and compose's default for it."""
    variable = f"MICROHUB_{name.upper()}"
    services = compose()["services"]
    values = [config_map()["data"][variable]]
    values += [services[s]["environment"][variable].split(":-")[-1] for s in service_names()]
    return [int(v.rstrip("}")) for v in values]


@pytest.mark.parametrize("name", ["outbox_batch_size", "kafka_consumer_max_batch"])
def test_the_shipped_batch_sizes_are_within_the_settings_bounds(name: str) -> None:
    for value in _shipped(name):
        Settings.model_validate({name: value})  # a value out of bounds raises


def test_the_shipped_relay_pass_holds_a_consumers_batch() -> None:
    """What one consumer batch decided leaves in one relay pass: with 200 a pass against
    batches of 500, each batch took three reads, three waits for acks and three marks
    before its offsets could be committed (docs/booking-throughput.md, session 13)."""
    passes, batches = _shipped("outbox_batch_size"), _shipped("kafka_consumer_max_batch")
    assert min(passes) >= max(batches)


def test_postgres_gets_one_database_per_service() -> None:
    script = (INFRA / "postgres" / "init-databases.sh").read_text()
    assert f"for service in {' '.join(service_names())}; do" in script
    env = compose()["services"]["booking"]["environment"]
    for service in service_names():
        url = env[f"MICROHUB_DATABASE_URLS__{service.upper()}"]
        assert url.startswith(f"postgresql://{service}:") and url.endswith(f"/{service}")


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_pinned_non_root_with_a_healthcheck() -> None:
    text = (INFRA / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) >= 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    # the check tries the health port (a service) and the public port (api, all): the
    # inline program must at least compile
    command = json.loads(re.search(r"^\s*CMD (\[.*\])$", text, re.M).group(1))
    assert command[:2] == ["python", "-c"]
    compile(command[2], "HEALTHCHECK", "exec")
    assert "MICROHUB_HEALTH_PORT" in command[2] and "MICROHUB_HTTP_PORT" in command[2]
    assert re.search(r'^ENTRYPOINT \["microhub"\]', text, re.M)
    assert re.search(r'^CMD \["serve", "all"\]', text, re.M)
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), source


# --- Kubernetes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "doc"),
    [
        pytest.param(f, d, id=f"{f}:{d['kind']}/{d.get('metadata', {}).get('name', '-')}")
        for f, d in manifests()
    ],
)
def test_every_manifest_validates_against_its_schema(filename: str, doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if doc["kind"] == "Kustomization":
        listed = set(doc["resources"])
        assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    elif key in CRD_SCHEMAS:
        schema = json.loads((SCHEMAS / CRD_SCHEMAS[key]).read_text())
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_fails_validation() -> None:
    """The validator is really consulted: a typo'd field is refused."""
    deployment = of_kind("Deployment")[0]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_setting_is_in_the_configmap_or_the_secret_and_every_pod_reads_both() -> None:
    config = config_map()
    [secret] = [s for s in of_kind("Secret") if s["metadata"]["name"] == "microhub-secrets"]
    wired = set(config["data"]) | set(secret["stringData"])
    assert wired == setting_names()
    assert not set(config["data"]) & set(secret["stringData"])
    assert all(
        not any(word in name for word in ("PASSWORD", "DATABASE_URL")) for name in config["data"]
    )
    pods = [d["spec"]["template"]["spec"] for d in of_kind("Deployment") + of_kind("Job")]
    assert len(pods) == len(service_names()) + 2  # + api + migration job
    for pod in pods:
        [container] = pod["containers"]
        refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"microhub-config", "microhub-secrets"}
        assert pod["securityContext"]["runAsNonRoot"] is True


def test_deployments_probe_the_real_health_endpoints_and_request_resources() -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    assert set(deployments) == {*service_names(), "api"}
    config = config_map()
    for name, deployment in deployments.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["serve", name]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # the probed port is the one the process serves: the public API for `serve api`,
        # the health port (only /healthz and /readyz) for a consuming service
        port_name, setting = (
            ("http", "MICROHUB_HTTP_PORT") if name == "api" else ("health", "MICROHUB_HEALTH_PORT")
        )
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {port_name: int(config["data"][setting])}, name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == port_name, (name, probe)
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    [job] = of_kind("Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][-1] == "microhub migrate && microhub topics apply"


def consumer_groups() -> dict[str, dict[str, str]]:
    """service -> {consumer group: topic}, from the services' own registrations."""
    settings = Settings()
    groups = {}
    for name in service_names():
        service = service_class(name)(
            settings, ["localhost:9092"], database_url="sqlite+aiosqlite:///:memory:"
        )
        groups[name] = {settings.group(c.name): c.topic for c in service.consumers}
    return groups


def test_keda_scales_every_consumer_group_on_lag_up_to_the_partition_count() -> None:
    partitions = {s.name: s.partitions for s in load_topics(INFRA / "topics.yaml")}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind("ScaledObject")}
    expected = consumer_groups()
    assert set(scaled) == set(expected)
    for name, scaled_object in scaled.items():
        triggers = scaled_object["spec"]["triggers"]
        assert all(t["type"] == "kafka" for t in triggers)
        # a consumer of every carrier's topic (a pattern) names no topic: KEDA takes the
        # lag of every topic its group has offsets on
        found = {t["metadata"]["consumerGroup"]: t["metadata"].get("topic") for t in triggers}
        assert found == {
            group: None if topic.startswith("^") or "\\" in topic else topic
            for group, topic in expected[name].items()
        }
        ceiling = min(partitions[topic] for topic in found.values() if topic is not None)
        assert scaled_object["spec"]["maxReplicaCount"] == ceiling
        assert all(t["metadata"]["allowIdleConsumers"] == "false" for t in triggers)


def test_strimzi_carriers_are_generated_from_the_registry_and_current() -> None:
    settings = Settings(carriers_file=SAMPLE_CARRIERS_FILE, topics_file=INFRA / "topics.yaml")
    expected = carriers_manifest(settings, load_carriers(SAMPLE_CARRIERS_FILE), cluster="microhub")
    actual = (K8S / "carriers.yaml").read_text()
    assert actual == expected, (
        "infra/k8s/carriers.yaml is stale: run "
        "`microhub carriers strimzi -o infra/k8s/carriers.yaml`"
    )
    users = [d for d in yaml.safe_load_all(actual) if d["kind"] == "KafkaUser"]
    # each carrier's, and the HTTP API's, whose Write on the carriers' commands topics
    # follows the registry (Strimzi keeps a user's ACLs in one resource)
    assert {u["metadata"]["name"] for u in users} == {
        f"microhub-carrier-{c.id}" for c in load_carriers(SAMPLE_CARRIERS_FILE)
    } | {"microhub-api"}


def test_strimzi_topics_are_generated_from_the_topics_file_and_current() -> None:
    expected = strimzi_manifest(load_topics(INFRA / "topics.yaml"), cluster="microhub")
    actual = (K8S / "kafka-topics.yaml").read_text()
    assert actual == expected, (
        "infra/k8s/kafka-topics.yaml is stale: run "
        "`microhub topics strimzi -o infra/k8s/kafka-topics.yaml`"
    )


# --- topics and settings ----------------------------------------------------------------


def test_topics_file_agrees_with_the_contracts() -> None:
    specs = {s.name: s for s in load_topics(INFRA / "topics.yaml")}
    assert set(specs) == set(all_topic_names())
    for topic in TOPICS:
        assert specs[topic.name].partitions == topic.partitions
        assert specs[topic.dlq].partitions == 1
    carriers = {s.name: s for s in load_carrier_topics(INFRA / "topics.yaml")}
    assert set(carriers) == {*(t.name for t in CARRIER_TOPICS), CARRIER_COMMANDS.dlq}
    for topic in CARRIER_TOPICS:
        assert carriers[topic.name].partitions == topic.partitions
    # the receipt time of a carrier's command is the broker's, not the carrier's clock
    assert carriers[CARRIER_COMMANDS.name].configs["message.timestamp.type"] == "LogAppendTime"
    specs |= carriers
    for spec in specs.values():
        assert {"retention.ms", "min.insync.replicas", "cleanup.policy"} <= set(spec.configs)
        assert int(spec.configs["min.insync.replicas"]) < spec.replication_factor


def test_every_microhub_variable_in_the_code_is_a_setting_or_known_not_to_be() -> None:
    used = set()
    for folder in ("services", "contracts"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"\b(MICROHUB_[A-Z0-9_]*[A-Z0-9])\b", path.read_text()))
    # prefixes quoted in docstrings (MICROHUB_KAFKA_…) are not variables
    used = {name for name in used if not any(s.startswith(name + "_") for s in setting_names())}
    used -= {  # the deprecated spellings, still read (with a warning) for one release
        f"MICROHUB_{n.upper()}" for n, f in Settings.model_fields.items() if f.deprecated
    }
    assert used - setting_names() <= set(NOT_SETTINGS), used - setting_names()


# --- observability ---------------------------------------------------------------------


def test_the_grafana_dashboard_and_scrape_config_use_the_metrics_we_export() -> None:
    """Every series a panel queries is one services/runtime/metrics.py defines, and the
    scrape config reaches every process of the compose file on the port it serves."""
    from prometheus_client import REGISTRY

    from services.runtime import metrics  # noqa: F401 - registers the series

    exported = set()
    for family in REGISTRY.collect():
        name = family.name
        exported |= {name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    dashboard = json.loads((INFRA / "grafana" / "microhub-dashboard.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried |= set(re.findall(r"\b(microhub_[a-z_]+)", target["expr"]))
    assert queried and queried <= exported, queried - exported
    scrape = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    targets = {
        t
        for job in scrape["scrape_configs"]
        for c in job.get("static_configs", ())
        for t in c["targets"]
    }
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    for service in ("booking", "dispatch", "reporting"):
        assert f"{service}:8081" in targets and service in compose["services"]
    assert "api:8000" in targets
