"""`microhub acls apply` and `acls table` as an operator runs them: a subprocess against
the SASL broker, configured only through MICROHUB_ variables; every wrong input is one
line that names it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from services.runtime.acls import load_acls, markdown_table
from tests.support.processes import MICROHUB, clean_env
from tests.support.secured_kafka import INTRUDER, SecuredKafka


async def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        MICROHUB,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    return process.returncode, out.decode(), err.decode()


def env_for(kafka: SecuredKafka, principal: str, prefix: str) -> dict[str, str]:
    user, password = kafka.credentials(principal, prefix)
    return clean_env(
        kafka_bootstrap_servers=",".join(kafka.bootstrap),
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=user,
        kafka_sasl_password=password,
        kafka_topic_prefix=prefix,
    )


async def test_apply_from_the_command_line_creates_users_and_acls_once(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    prefix = secured_kafka.new_prefix()
    env = env_for(secured_kafka, "admin", prefix)
    passwords = tmp_path / "passwords.yaml"
    passwords.write_text(yaml.safe_dump(secured_kafka.passwords()))

    code, out, err = await run("acls", "apply", "--passwords", str(passwords), "--dry-run", env=env)
    assert code == 0, err
    # 51: the API writes the internal commands topic for hub operators' closures only
    # (carriers apply grants it the carriers' commands topics)
    assert out.splitlines()[-1] == "dry run: 8 users and 51 ACLs to create, 0 ACLs present, 0 extra"
    assert f"User:{prefix}microhub-booking" in out and "(dry run)" in out

    code, out, err = await run("acls", "apply", "--passwords", str(passwords), env=env)
    assert code == 0, err
    assert out.splitlines()[-1] == "8 users created, 51 ACLs created, 0 present, 0 extra kept"
    code, out, err = await run("acls", "apply", env=env)
    assert code == 0, err
    assert out.strip() == "0 users created, 0 ACLs created, 51 present, 0 extra kept"


async def test_every_wrong_input_is_one_line_naming_it(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    prefix = secured_kafka.new_prefix()
    admin = env_for(secured_kafka, "admin", prefix)
    typo = tmp_path / "passwords.yaml"
    typo.write_text("bookng: secret\n")
    broken = tmp_path / "acls.yaml"
    broken.write_text("principals:\n  booking:\n    topics:\n      microhub.x: [Raed]\n")
    cases = [
        (
            ["acls", "apply"],
            env_for(secured_kafka, INTRUDER, prefix),
            1,
            f"the principal '{INTRUDER}' may not manage ACLs and SCRAM users: it lacks Alter "
            "and Describe on the cluster",
        ),
        (
            ["acls", "apply", "--dry-run"],
            env_for(secured_kafka, INTRUDER, prefix),
            1,
            f"the principal '{INTRUDER}' may not read ACLs and SCRAM users: it lacks Describe",
        ),
        (["acls", "apply", "--passwords", str(typo)], admin, 1, "'bookng' is no principal"),
        (
            ["acls", "apply", "--file", str(broken)],
            admin,
            1,
            "'Raed' is not an operation on a topic",
        ),
        (
            ["acls", "apply", "--file", str(tmp_path / "no.yaml")],
            admin,
            1,
            "cannot read the ACL file",
        ),
        (
            ["acls", "apply", "--scram-mechanism", "SCRAM-SHA-1"],
            admin,
            1,
            "unknown SCRAM mechanism 'SCRAM-SHA-1'",
        ),
        (["acls", "apply"], clean_env(), 2, "MICROHUB_KAFKA_BOOTSTRAP_SERVERS is 'embedded'"),
        (["acls", "table", "--file", str(broken)], clean_env(), 1, "'Raed' is not an operation"),
    ]
    for args, env, expected_code, message in cases:
        code, out, err = await run(*args, env=env)
        assert code == expected_code, (args, out, err)
        assert len(err.strip().splitlines()) == 1 and message in err, (args, err)


async def test_table_prints_the_files_table() -> None:
    code, out, _ = await run("acls", "table", env=clean_env())
    assert code == 0 and out == markdown_table(load_acls())
