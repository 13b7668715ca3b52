"""`microhub topics apply` as an operator runs it: against Apache Kafka through the real
admin API (create, grow, config drift, dry run), and against an embedded mock cluster in
another process (which cannot create topics through the admin API: a clear failure)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.runtime.settings import Settings
from services.runtime.topic_admin import platform_topics
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import MICROHUB, clean_env, embedded_kafka_process

PREFIX = "cli."


async def run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        MICROHUB,
        *args,
        env=env | {"COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    return process.returncode, out.decode()


async def describe(bootstrap: list[str], names: list[str]) -> dict[str, tuple[int, str]]:
    """topic -> (partitions, retention.ms), for the topics that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = [n for n in names if n in set(await admin.list_topics())]
        if not existing:
            return {}
        partitions = {
            t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(existing)
        }
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in existing]
        )
        retention = {
            resource[3]: dict((entry[0], entry[1]) for entry in resource[4])["retention.ms"]
            for response in configs
            for resource in response.resources
        }
        return {n: (partitions[n], retention[n]) for n in existing}
    finally:
        await admin.close()


async def test_apply_through_the_admin_api_creates_grows_reports_drift_and_dry_runs(
    real_kafka: KafkaUnderTest, tmp_path: Path
) -> None:
    prefix = real_kafka.new_prefix()
    env = clean_env(kafka_bootstrap_servers=real_kafka.bootstrap_string, kafka_topic_prefix=prefix)
    # the topics file's, and those of the sample carriers (MICROHUB_CARRIERS_FILE)
    specs = platform_topics(Settings())
    names = [prefix + s.name for s in specs]

    # a dry run on an empty cluster says what it would create, and creates nothing
    code, out = await run("topics", "apply", "--dry-run", env=env)
    assert code == 0, out
    assert "(dry run)" in out and out.count("create") >= len(names)
    assert await describe(real_kafka.bootstrap, names) == {}

    code, out = await run("topics", "apply", env=env)
    assert code == 0, out
    assert f"{len(names)} created, 0 grown, 0 drifted, 0 unchanged" in out
    created = await describe(real_kafka.bootstrap, names)
    assert {n: p for n, (p, _) in created.items()} == {prefix + s.name: s.partitions for s in specs}
    assert created[prefix + "microhub.booking.commands.v1"][1] == "604800000"

    code, out = await run("topics", "apply", env=env)
    assert code == 0, out
    assert f"0 created, 0 grown, 0 drifted, {len(names)} unchanged" in out

    # the file now wants more partitions and another retention for one topic
    changed = tmp_path / "topics.yaml"
    changed.write_text(
        "topics:\n"
        "  - name: microhub.booking.commands.v1\n"
        "    partitions: 8\n"
        "    replication_factor: 1\n"
        "    configs:\n"
        '      retention.ms: "86400000"\n'
    )
    commands = prefix + "microhub.booking.commands.v1"
    code, out = await run("topics", "apply", "--file", str(changed), "--dry-run", env=env)
    assert code == 0, out
    assert "grow" in out and "retention.ms is '604800000', the file says '86400000'" in out
    assert (await describe(real_kafka.bootstrap, [commands]))[commands] == (6, "604800000")

    code, out = await run("topics", "apply", "--file", str(changed), "--fail-on-drift", env=env)
    assert code == 1, out  # grown, but the drift is reported and fails the job
    assert "0 created, 1 grown, 1 drifted" in out
    # grown through CreatePartitions; the drifted config reported, never changed
    assert (await describe(real_kafka.bootstrap, [commands]))[commands] == (8, "604800000")


async def test_on_the_mock_apply_is_idempotent_and_cannot_create_topics(tmp_path: Path) -> None:
    async with embedded_kafka_process(PREFIX) as bootstrap:
        env = clean_env(kafka_bootstrap_servers=",".join(bootstrap), kafka_topic_prefix=PREFIX)

        code, out = await run("topics", "apply", env=env)
        assert code == 0, out
        # the file's topics, and those of the sample carriers (MICROHUB_CARRIERS_FILE)
        everything = len(platform_topics(Settings()))
        assert f"0 created, 0 grown, 0 drifted, {everything} unchanged" in out
        # the mock keeps no configs: said once, not guessed and not an error
        assert out.count("the broker cannot describe configs") == 1

        extra = tmp_path / "topics.yaml"
        extra.write_text("topics:\n  - name: brand.new\n    partitions: 2\n")
        code, out = await run("topics", "apply", "--file", str(extra), env=env)
        assert code == 1
        assert "cannot create cli.brand.new" in out and "CreateTopics" in out


async def test_apply_refuses_the_embedded_placeholder() -> None:
    code, out = await run("topics", "apply", env=clean_env())
    assert code == 2
    assert "MICROHUB_KAFKA_BOOTSTRAP_SERVERS is 'embedded'" in out
