"""infra/acls.yaml without a broker: what it grants agrees with what the services consume
and publish and with the table in docs/deploy.md; the loader names every mistake; the
plan's rules (what is missing, present, extra, out of scope)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.topics import (
    BOOKING_COMMANDS,
    CARRIER,
    FLEET_TELEMETRY,
    all_topic_names,
    dead_letter_topic,
)
from services.app.registry import service_class, service_names, specs
from services.runtime.acls import (
    OPERATIONS,
    REPO_ACLS_FILE,
    AclsError,
    Grant,
    Permission,
    Principal,
    grants,
    load_acls,
    load_passwords,
    markdown_table,
    plan,
)
from services.runtime.settings import Settings
from services.runtime.topics import REPO_TOPICS_FILE, load_topics

DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
PRINCIPALS = load_acls()


def principal(key: str) -> Principal:
    return next(p for p in PRINCIPALS if p.key == key)


def granted(key: str, resource: str, operation: str) -> set[str]:
    """Names (prefixes end in '*') on which the principal may ``operation``."""
    return {
        p.shown
        for p in principal(key).permissions
        if p.resource == resource and operation in p.operations
    }


def acl_name(topic: str) -> str:
    """A carrier topic (one per carrier) is granted by the carriers' namespace prefix."""
    return "microhub.carriers.*" if CARRIER in topic else topic


@pytest.mark.parametrize("name", service_names())
def test_each_service_may_read_write_and_join_exactly_what_it_declares(name: str) -> None:
    spec = service_class(name).spec
    settings = Settings()  # production names: no prefix
    consumed = {acl_name(c.topic.name) for c in spec.consumes}
    groups = set(spec.group_ids(settings).values())
    published = {acl_name(p.topic.name) for p in spec.publishes}  # through its outbox
    dead_letters = {acl_name(dead_letter_topic(c.topic.name)) for c in spec.consumes}
    assert granted(name, "topic", "Read") == consumed
    assert granted(name, "group", "Read") == groups
    assert granted(name, "topic", "Write") == published | dead_letters
    # topics apply on start observes every topic of the file: Describe on the namespace
    assert granted(name, "topic", "Describe") == {"microhub.*"}
    assert all(t.startswith("microhub.") for t in all_topic_names())
    assert not [p for p in principal(name).permissions if p.resource == "cluster"]


def test_the_api_only_sends_commands_and_vehicles_only_telemetry() -> None:
    # carriers' commands from the API go onto the carriers' own topics (ACLs from `carriers
    # apply`, tests/unit/test_carriers_platform_writer.py); only hub operators' closures,
    # which name no carrier, onto the internal commands topic
    assert granted("api", "topic", "Write") == {BOOKING_COMMANDS.name}
    assert BOOKING_COMMANDS.name in granted("gateway", "topic", "Write")
    assert granted("api", "topic", "Read") == set() and granted("api", "group", "Read") == set()
    assert granted("fleet", "topic", "Write") == {FLEET_TELEMETRY.name}
    assert {p.resource for p in principal("fleet").permissions} == {"topic"}


def test_keda_describes_the_consumed_topics_and_the_groups_and_reads_nothing() -> None:
    consumers = [c for spec in specs() for c in spec.consumes]
    groups = {g for spec in specs() for g in spec.group_ids(Settings()).values()}
    assert granted("keda", "topic", "Describe") == {acl_name(c.topic.name) for c in consumers}
    assert granted("keda", "group", "Describe") == groups
    operations = {op for p in principal("keda").permissions for op in p.operations}
    assert operations == {"Describe"}


def test_the_migration_job_may_create_grow_and_inspect_every_topic_of_the_topics_file() -> None:
    [permission] = principal("migration").permissions
    assert permission == Permission(
        "topic", "microhub.", "prefixed", ("Create", "Alter", "Describe", "DescribeConfigs")
    )
    assert all(s.name.startswith("microhub.") for s in load_topics(REPO_TOPICS_FILE))


def test_the_table_in_docs_deploy_md_is_the_file() -> None:
    text = DEPLOY_DOC.read_text()
    header = "| principal (user) | topics | groups | cluster |"
    assert header in text, "docs/deploy.md has no ACL table"
    table = text[text.index(header) :].split("\n\n", 1)[0] + "\n"
    assert table == markdown_table(PRINCIPALS), (
        "docs/deploy.md's ACL table is not infra/acls.yaml's: replace it with the output "
        "of `microhub acls table`"
    )
    assert "infra/acls.yaml" in text


def test_prefix_goes_on_users_topics_and_groups_not_on_the_cluster() -> None:
    principals = [
        Principal(
            "carrier-acme",
            "microhub-carrier-acme",
            permissions=(
                Permission("topic", "microhub.carriers.acme.ingress", "literal", ("Write",)),
                Permission("group", "microhub-carrier-acme", "prefixed", ("Read",)),
                Permission("cluster", "kafka-cluster", "literal", ("IdempotentWrite",)),
            ),
        )
    ]
    user = "User:stage.microhub-carrier-acme"
    assert grants(principals, "stage.") == [
        Grant(user, "cluster", "kafka-cluster", "literal", "IdempotentWrite"),
        Grant(user, "group", "stage.microhub-carrier-acme", "prefixed", "Read"),
        Grant(user, "topic", "stage.microhub.carriers.acme.ingress", "literal", "Write"),
    ]


def test_the_plan_creates_what_is_missing_and_reports_only_extras_in_scope() -> None:
    wanted = grants(PRINCIPALS, "p.")
    booking_extra = Grant("User:p.microhub-booking", "topic", "elsewhere", "literal", "Read")
    removed_carrier = Grant(
        "User:p.carrier-x", "topic", "p.microhub.carriers.x", "literal", "Write"
    )
    denied = Grant("User:p.microhub-api", "topic", "p.microhub.x", "literal", "Read", "*", "Deny")
    foreign = [
        Grant("User:someone", "topic", "orders", "literal", "Read"),
        Grant("User:p.carrier-x", "cluster", "kafka-cluster", "literal", "Describe"),
        # another environment's (prefix q.) ACLs on the same cluster
        Grant(
            "User:q.microhub-booking", "topic", "q.microhub.booking.events.v1", "literal", "Write"
        ),
    ]
    observed = [*wanted[:5], booking_extra, removed_carrier, denied, *foreign]
    result = plan(
        PRINCIPALS,
        observed,
        prefix="p.",
        existing_users={"p.microhub-booking"},
        passwords={"dispatch": "secret"},
    )
    assert result.present == wanted[:5] and result.missing == wanted[5:]
    assert result.extra == sorted([booking_extra, removed_carrier, denied])
    states = {u.principal: u.state for u in result.users}
    assert states["booking"] == "present" and states["dispatch"] == "create"
    assert states["api"] == "no-password"


def bad_file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "acls.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def entry(**sections: Any) -> dict[str, Any]:
    return {"principals": {"booking": sections}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("principals: [", r"is not valid YAML: .*\(line \d+, column \d+\)$"),
        ({"topics": {}}, r"expected a mapping with a 'principals' mapping$"),
        ({"principals": {}, "extra": 1}, r"unknown top-level key\(s\) extra$"),
        (
            entry(topics={"t": ["Raed"]}),
            r"topic 't': 'Raed' is not an operation on a topic \(choose",
        ),
        (entry(groups={"g": ["Write"]}), r"group 'g': 'Write' is not an operation on a group"),
        (entry(cluster=["Read"]), r"'Read' is not an operation on a cluster"),
        (entry(topics={"t": []}), r"topic 't': expected a non-empty list of operations"),
        (entry(topics={"t": ["Read", "Read"]}), r"an operation is listed twice"),
        (entry(topics={"a*b": ["Read"]}), r"'\*' may only end a name \(a prefix\)$"),
        (entry(topics={"*": ["Read"]}), r"must be a name or a prefix ending in '\*'$"),
        (entry(topics=["t"]), r"topics must map topic names to operation lists$"),
        (entry(topic={"t": ["Read"]}), r"principal 'booking': unknown key\(s\) topic$"),
        (entry(), r"principal 'booking' has no permissions"),
        (entry(user="", topics={"t": ["Read"]}), r"user must be a non-empty name"),
        (
            {
                "principals": {
                    "a": {"user": "same", "topics": {"t": ["Read"]}},
                    "b": {"user": "same", "topics": {"t": ["Read"]}},
                }
            },
            r"principals 'a' and 'b' are the same user 'same'$",
        ),
    ],
)
def test_every_mistake_in_the_file_is_one_line_naming_it(
    tmp_path: Path, document: Any, message: str
) -> None:
    with pytest.raises(AclsError) as error:
        load_acls(bad_file(tmp_path, document))
    assert "\n" not in str(error.value)
    assert re.search(message, str(error.value)), str(error.value)
    assert str(tmp_path / "acls.yaml") in str(error.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AclsError, match=r"cannot read the ACL file .*nope.yaml: No such file"):
        load_acls(tmp_path / "nope.yaml")


def test_passwords_must_belong_to_principals_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "passwords.yaml"
    path.write_text("booking: s3cret\n")
    assert load_passwords(path, PRINCIPALS) == {"booking": "s3cret"}
    path.write_text("bookng: s3cret\n")
    with pytest.raises(AclsError, match=r"'bookng' is no principal of the ACL file \(principals: "):
        load_passwords(path, PRINCIPALS)
    path.write_text("booking: ''\n")
    with pytest.raises(AclsError, match=r"the password of 'booking' must be a non-empty string$"):
        load_passwords(path, PRINCIPALS)


def test_the_repository_file_is_the_default() -> None:
    assert REPO_ACLS_FILE.is_file() and load_acls(REPO_ACLS_FILE) == PRINCIPALS


def test_grants_and_the_admin_clients_bindings_convert_both_ways() -> None:
    from services.runtime.acl_admin import to_binding, to_grant

    every = [
        Grant("User:u", resource, "n", pattern, operation)
        for resource, operations in OPERATIONS.items()
        for operation in operations
        for pattern in ("literal", "prefixed")
    ]
    unusual = [
        Grant("User:u", "transactional_id", "tx", "literal", "Write"),
        Grant("User:u", "topic", "t", "literal", "Read", "10.0.0.1", "Deny"),
    ]
    for grant in every + unusual:
        assert to_grant(to_binding(grant)) == grant
