"""The HTTP API writes carriers' commands onto their own topics: `carriers apply` (and the
Strimzi resources) give its principal a Write on each active carrier's commands topic and
nothing else of a carrier's; `acls apply` leaves those ACLs to `carriers apply`."""

from __future__ import annotations

from services.runtime.acls import Grant, grants, load_acls, plan
from services.runtime.carriers import Carrier, is_carrier_grant, principals, strimzi_users

CARRIERS = [Carrier("acme", "Acme"), Carrier("bravo", "Bravo"), Carrier("gone", "Gone", False)]
API = "User:p.microhub-api"


def api_grants(prefix: str = "p.") -> list[Grant]:
    return [g for g in grants(principals(CARRIERS), prefix) if g.principal == API]


def test_the_api_may_write_each_active_carriers_commands_and_nothing_else_of_theirs() -> None:
    assert api_grants() == [
        Grant(API, "topic", "p.microhub.carriers.acme.commands.v1", "literal", "Write"),
        Grant(API, "topic", "p.microhub.carriers.bravo.commands.v1", "literal", "Write"),
    ]


def test_acls_apply_leaves_them_alone_and_carriers_apply_removes_an_inactive_carriers() -> None:
    gone = Grant(API, "topic", "p.microhub.carriers.gone.commands.v1", "literal", "Write")
    observed = [*api_grants(), gone]
    platform = plan(load_acls(), observed, prefix="p.")
    assert platform.extra == []  # nothing of a carrier's topics is the file's business
    carriers = plan(
        principals(CARRIERS), observed, prefix="p.", scope=lambda g: is_carrier_grant(g, "p.")
    )
    assert carriers.extra == [gone]
    assert set(api_grants()) <= set(carriers.present)


def test_the_apis_strimzi_user_holds_its_file_acls_and_the_carriers_commands() -> None:
    [api] = [
        u for u in strimzi_users(CARRIERS, cluster="c") if u["metadata"]["name"] == "microhub-api"
    ]
    acls = {
        (a["resource"]["name"], a["operations"][0]) for a in api["spec"]["authorization"]["acls"]
    }
    assert ("microhub.carriers.acme.commands.v1", "Write") in acls
    assert ("microhub.carriers.bravo.commands.v1", "Write") in acls
    assert ("microhub.", "Describe") in acls  # the file's (`microhub.*`)
    # nothing of an inactive carrier's, no carrier's events; of the internal topics only
    # Write on the commands topic, for hub operators' closures (they name no carrier, so
    # no carrier's topic and gateway is theirs: README, "Hub closures")
    assert not any("gone" in name or "events" in name for name, _ in acls)
    internal = {(n, op) for n, op in acls if n.startswith("microhub.booking.")}
    assert internal == {("microhub.booking.commands.v1", "Write")}
