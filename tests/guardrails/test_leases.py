"""Leases bound to roles: ceilings on priority and duration, operators breaking lower
leases, unknown assets refused; every decision audited with who held what."""

from __future__ import annotations

from pathlib import Path

import pytest

from grid.clock import SimClock
from grid.config import load_site, parse_site
from grid.errors import PolicyRefusal
from guardrails.principals import Caller, caller_named
from tests.guardrails.twin_site import TwinSite, make_actuator

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
AGENT = Caller(name="agent", role="agent")
OPERATOR = Caller(name="operator", role="operator")
ADMIN = Caller(name="admin", role="admin")


@pytest.fixture
def actuator(tmp_path: Path):
    return make_actuator(SITE, TwinSite(SITE, SimClock()), tmp_path)


@pytest.mark.parametrize(
    ("caller", "priority", "duration_s", "rule"),
    [
        (AGENT, 100, 60, "lease_priority"),
        (AGENT, 51, 60, "lease_priority"),
        (AGENT, 40, 86_400, "lease_duration"),
        (Caller(name="grid-response", role="daemon"), 81, 60, "lease_priority"),
        (OPERATOR, 95, 60, "lease_priority"),
    ],
)
def test_a_lease_above_the_role_ceiling_is_refused_and_audited(
    actuator, caller: Caller, priority: int, duration_s: float, rule: str
) -> None:
    with pytest.raises(PolicyRefusal) as refused:
        actuator.acquire_lease(caller, "battery", priority, duration_s)
    assert refused.value.rule == rule
    assert actuator.leases.holder("battery") is None
    record = actuator.audit.tail(1)[0]
    assert record.outcome == "refused" and record.decision["results"][0]["rule"] == rule


def test_the_site_file_overrides_a_role_ceiling() -> None:
    peak = caller_named(SITE, "peak-shaving")
    assert (peak.role, peak.lease_priority_cap) == ("daemon", 60)
    assert caller_named(SITE, "grid-response").lease_priority_cap == 80
    assert caller_named(SITE, "agent").lease_s_cap == 3600


def test_an_unknown_asset_cannot_be_leased(actuator) -> None:
    with pytest.raises(PolicyRefusal, match="asset_known") as refused:
        actuator.acquire_lease(AGENT, "no-such-asset\u202e", 10, 60)
    assert "battery" in refused.value.detail
    assert actuator.leases.all() == []


def test_an_operator_breaks_a_lower_lease_and_the_audit_names_its_holder(actuator) -> None:
    actuator.acquire_lease(AGENT, "ev-chargers", 50, 3600)
    with pytest.raises(PolicyRefusal, match="lease"):
        actuator.acquire_lease(Caller(name="arbitrage", role="agent"), "ev-chargers", 50, 60)
    ended = actuator.release_lease(OPERATOR, "ev-chargers")
    assert ended is not None and ended.holder == "agent"
    assert actuator.leases.holder("ev-chargers") is None
    record = actuator.audit.tail(1)[0]
    assert record.action == "lease_release" and "broke the lease of agent" in record.detail
    assert "broken by operator" in actuator.leases.notices("agent")[0]


def test_an_agent_cannot_break_another_agents_lease(actuator) -> None:
    actuator.acquire_lease(Caller(name="arbitrage", role="agent"), "battery", 30, 600)
    assert actuator.release_lease(AGENT, "battery") is None
    assert actuator.leases.holder("battery").holder == "arbitrage"


def test_an_operator_cannot_break_a_lease_at_its_own_ceiling(actuator) -> None:
    actuator.acquire_lease(ADMIN, "battery", 95, 600)
    assert actuator.release_lease(OPERATOR, "battery") is None
    with pytest.raises(PolicyRefusal, match="lease"):
        actuator.acquire_lease(OPERATOR, "battery", 90, 60)
    assert actuator.release_lease(ADMIN, "battery") is not None


def test_a_principal_ceiling_in_the_site_file_is_validated() -> None:
    raw = SITE.model_dump(mode="json")
    raw["principals"][1]["max_lease_priority"] = 101
    with pytest.raises(Exception, match="max_lease_priority"):
        parse_site(raw)
