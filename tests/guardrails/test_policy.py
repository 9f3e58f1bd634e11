"""The rules on plain data: each refusal names its rule and the numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grid.config import load_site
from guardrails.killswitch import HaltState
from guardrails.leases import Lease
from guardrails.policy import Action, History, SiteSnapshot, evaluate
from guardrails.principals import Caller

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
AGENT = Caller(name="agent", role="agent")
OPERATOR = Caller(name="operator", role="operator")
VIEWER = Caller(name="viewer", role="viewer")
ADMIN = Caller(name="admin", role="admin")


def snapshot(**changes) -> SiteSnapshot:
    base = SiteSnapshot(
        now=NOW,
        relay_on={ld.id: True for ld in SITE.assets.loads},
        soc_fraction={"battery": 0.5},
        battery_kw={"battery": 0.0},
        peaker_running={"gas-peaker": False},
        grid_import_kw=20.0,
        device_online={d.id: True for d in SITE.devices},
        telemetry_age_s={
            a: 5.0
            for a in [
                "battery",
                "pv-roof",
                "gas-peaker",
                "server-room",
                "cold-store",
                "ev-chargers",
                "hvac-office",
            ]
        },
    )
    return base.model_copy(update=changes)


def decide(caller, *actions, snap=None, history=None, halt=None, lease=None, trust=None):
    return evaluate(
        SITE,
        caller,
        list(actions),
        snap or snapshot(),
        history or History(),
        halt or HaltState(),
        lambda asset, who: lease,
        trust,
    )


def refused_rule(decision) -> str:
    refusal = decision.refusal()
    assert refusal is not None, decision
    return refusal.rule


OFF_EV = Action(kind="set_relay", asset="ev-chargers", on=False)


def test_agent_may_shed_a_sheddable_load_without_confirmation() -> None:
    decision = decide(AGENT, OFF_EV)
    assert decision.allowed and not decision.needs_confirmation
    assert {r.rule for r in decision.results} >= {
        "role",
        "kill_switch",
        "relay_dwell",
        "stale_telemetry",
        "device_offline",
    }


def test_agent_can_never_shed_a_critical_load() -> None:
    decision = decide(AGENT, Action(kind="set_relay", asset="server-room", on=False))
    assert refused_rule(decision) == "critical_load"
    assert "server-room is a critical load" in str(decision.refusal())


def test_operator_may_switch_off_a_critical_load_only_with_confirmation() -> None:
    decision = decide(OPERATOR, Action(kind="set_relay", asset="server-room", on=False))
    assert decision.allowed and decision.needs_confirmation


def test_viewer_cannot_act() -> None:
    assert refused_rule(decide(VIEWER, OFF_EV)) == "role"


def test_relay_dwell_refusal_gives_the_seconds() -> None:
    history = History(switches={"ev-chargers": [NOW - timedelta(seconds=40)]})
    decision = decide(AGENT, OFF_EV, history=history)
    assert refused_rule(decision) == "relay_dwell"
    assert "last switched 40 s ago; minimum dwell 300 s" in str(decision.refusal())


def test_no_change_is_not_a_switching() -> None:
    history = History(switches={"ev-chargers": [NOW - timedelta(seconds=40)]})
    on = Action(kind="set_relay", asset="ev-chargers", on=True)
    assert decide(AGENT, on, history=history).allowed


def test_switch_rate_per_hour() -> None:
    times = [NOW - timedelta(minutes=9 * i + 6) for i in range(6)]
    decision = decide(AGENT, OFF_EV, history=History(switches={"ev-chargers": times}))
    assert refused_rule(decision) == "relay_switch_rate"
    assert "6 switchings in the last hour; limit 6" in str(decision.refusal())


def test_rate_limit_per_principal() -> None:
    history = History(actions={"agent": [NOW - timedelta(seconds=i) for i in range(30)]})
    assert refused_rule(decide(AGENT, OFF_EV, history=history)) == "rate_limit"
    assert decide(OPERATOR, OFF_EV, history=history).allowed  # counted per principal


def test_halt_stops_everyone_but_admin() -> None:
    halt = HaltState(halted=True, by="admin", reason="storm", since=NOW)
    assert refused_rule(decide(AGENT, OFF_EV, halt=halt)) == "kill_switch"
    assert refused_rule(decide(OPERATOR, OFF_EV, halt=halt)) == "kill_switch"
    assert decide(ADMIN, OFF_EV, halt=halt).allowed


def test_stale_or_missing_telemetry_blocks_agents_not_operators() -> None:
    stale = snapshot(telemetry_age_s={"ev-chargers": 600.0})
    decision = decide(AGENT, OFF_EV, snap=stale)
    assert refused_rule(decision) == "stale_telemetry"
    assert "600 s old; limit 120 s" in str(decision.refusal())
    assert decide(OPERATOR, OFF_EV, snap=stale).allowed
    assert refused_rule(decide(AGENT, OFF_EV, snap=snapshot(telemetry_age_s={}))) == (
        "stale_telemetry"
    )


def test_untrustworthy_data_blocks_automated_action() -> None:
    decision = decide(AGENT, OFF_EV, trust=lambda asset: (False, "residual z=8.2"))
    assert refused_rule(decision) == "anomaly_interlock"


def test_offline_device_refuses_everyone() -> None:
    offline = snapshot(device_online={"relay-board-1": False})
    assert refused_rule(decide(OPERATOR, OFF_EV, snap=offline)) == "device_offline"


def test_lease_held_by_another_names_the_holder() -> None:
    lease = Lease(
        asset="ev-chargers",
        holder="grid-response",
        priority=90,
        expires_at=NOW + timedelta(minutes=5),
    )
    decision = decide(AGENT, OFF_EV, lease=lease)
    assert refused_rule(decision) == "lease"
    assert "grid-response" in str(decision.refusal())


@pytest.mark.parametrize(
    ("power_kw", "rule"), [(26.0, "battery_power_limit"), (-25.5, "battery_power_limit")]
)
def test_battery_power_limits(power_kw: float, rule: str) -> None:
    action = Action(kind="set_battery_power", asset="battery", power_kw=power_kw)
    decision = decide(AGENT, action)
    assert refused_rule(decision) == rule
    assert "must be within [-25 (charge), 25 (discharge)] kW" in str(decision.refusal())


def test_battery_import_cap_must_be_within_the_import_limit() -> None:
    capped = Action(kind="set_battery_power", asset="battery", power_kw=5, import_cap_kw=61)
    decision = decide(AGENT, capped)
    assert refused_rule(decision) == "import_cap_range"
    assert "within [0, 60] kW" in str(decision.refusal())
    ok = Action(kind="set_battery_power", asset="battery", power_kw=5, import_cap_kw=30)
    assert decide(AGENT, ok).allowed and "import held to 30 kW" in ok.describe()
    with pytest.raises(ValueError, match="import_cap_kw is for set_battery_power"):
        Action(kind="set_pv_limit", asset="pv-roof", power_kw=5, import_cap_kw=30)


def test_battery_soc_limits_both_ways() -> None:
    empty = snapshot(soc_fraction={"battery": 0.1})
    full = snapshot(soc_fraction={"battery": 0.95})
    discharge = Action(kind="set_battery_power", asset="battery", power_kw=10)
    charge = Action(kind="set_battery_power", asset="battery", power_kw=-10)
    assert refused_rule(decide(AGENT, discharge, snap=empty)) == "battery_soc_limit"
    assert refused_rule(decide(AGENT, charge, snap=full)) == "battery_soc_limit"
    assert decide(AGENT, charge, snap=empty).allowed


def test_import_limit_counts_the_new_load() -> None:
    busy = snapshot(grid_import_kw=50.0, relay_on={"ev-chargers": False})
    on = Action(kind="set_relay", asset="ev-chargers", on=True)
    decision = decide(AGENT, on, snap=busy)
    assert refused_rule(decision) == "import_limit"
    assert "import would reach 72.0 kW (now 50.0 + 22); limit 60 kW" in str(decision.refusal())


def test_peaker_min_load_and_min_down_time() -> None:
    low = Action(kind="set_peaker_power", asset="gas-peaker", power_kw=5)
    assert refused_rule(decide(AGENT, low)) == "peaker_power_limit"
    start = Action(kind="start_peaker", asset="gas-peaker")
    stopped_recently = History(switches={"gas-peaker": [NOW - timedelta(minutes=10)]})
    decision = decide(AGENT, start, history=stopped_recently)
    assert refused_rule(decision) == "peaker_min_up_down"
    assert "minimum down time 1800 s" in str(decision.refusal())


def test_unknown_asset_is_named() -> None:
    decision = decide(AGENT, Action(kind="set_relay", asset="sauna", on=True))
    assert refused_rule(decision) == "asset_known"


def test_operator_direct_action_needs_confirmation_but_dispatch_does_not() -> None:
    assert decide(OPERATOR, OFF_EV).needs_confirmation
    decision = evaluate(
        SITE,
        OPERATOR,
        [OFF_EV],
        snapshot(),
        History(),
        HaltState(),
        lambda a, w: None,
        None,
        direct=False,
    )
    assert decision.allowed and not decision.needs_confirmation
