"""`microhub topics apply` as an operator runs it, against
an embedded cluster in another process (as against a remote Kafka)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.processes import MICROHUB, clean_env, embedded_kafka_process

PREFIX = "cli."


async def run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        MICROHUB,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, out.decode()


async def test_apply_is_idempotent_and_a_topic_it_cannot_create_is_a_clear_failure(
    tmp_path: Path,
) -> None:
    async with embedded_kafka_process(PREFIX) as bootstrap:
        env = clean_env(kafka_bootstrap_servers=",".join(bootstrap), kafka_topic_prefix=PREFIX)

        code, out = await run("topics", "apply", env=env)
        assert code == 0, out
        assert "0 created, 0 grown, 0 drifted, 8 unchanged" in out
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
