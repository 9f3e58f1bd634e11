"""The Actuator against a simulated site: safety properties under random requests,
crashes between send and ack, lease contention, the halt."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.protocol import Ack, Command
from grid.clock import SimClock
from grid.config import load_site
from grid.errors import PolicyRefusal
from guardrails.policy import Action
from guardrails.principals import Caller
from tests.guardrails.twin_site import TwinSite, make_actuator

SITE = load_site(Path(__file__).parents[2] / "examples" / "site.toml")
AGENT = Caller(name="agent", role="agent")
ADMIN = Caller(name="admin", role="admin")
OPERATOR = Caller(name="operator", role="operator")
LOADS = [ld.id for ld in SITE.assets.loads]
CRITICAL = {ld.id for ld in SITE.assets.loads if ld.critical}
BATTERY = SITE.assets.batteries[0]
PEAKER = SITE.assets.peakers[0]

relay_requests = st.tuples(st.just("relay"), st.sampled_from(LOADS), st.booleans())
waits = st.tuples(st.just("wait"), st.integers(0, 400))
# Relay switches and short waits are drawn most often: chatter is the likeliest harm.
requests = st.one_of(
    relay_requests,
    relay_requests,
    relay_requests,
    relay_requests,
    waits,
    st.tuples(st.just("battery"), st.floats(-40, 40, allow_nan=False)),
    st.tuples(st.just("peaker"), st.sampled_from(["start_peaker", "stop_peaker"])),
    st.tuples(st.just("peaker_kw"), st.floats(0, 40, allow_nan=False)),
    st.tuples(st.just("pv"), st.floats(-5, 30, allow_nan=False)),
    st.tuples(st.just("halt"), st.booleans()),
    waits,
)


def to_action(request: tuple) -> Action:
    kind = request[0]
    if kind == "relay":
        return Action(kind="set_relay", asset=request[1], on=request[2])
    if kind == "battery":
        return Action(kind="set_battery_power", asset=BATTERY.id, power_kw=request[1])
    if kind == "peaker":
        return Action(kind=request[1], asset=PEAKER.id)
    if kind == "peaker_kw":
        return Action(kind="set_peaker_power", asset=PEAKER.id, power_kw=request[1])
    return Action(kind="set_pv_limit", asset=SITE.assets.pv[0].id, power_kw=request[1])


def board_relays(site: TwinSite) -> list[bool]:
    return list(site.twins["relay-board-1"].relays)


@settings(max_examples=150, deadline=None)
@given(st.lists(requests, min_size=10, max_size=60))
def test_agent_requests_never_break_a_safety_property(sequence: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = SimClock()
        site = TwinSite(SITE, clock)
        actuator = make_actuator(SITE, site, Path(tmp))
        switch_times: dict[int, list[float]] = {}
        records = actuator.audit.count()
        for request in sequence:
            if request[0] == "wait":
                clock.advance(request[1])
                site.report()
                continue
            before_relays = board_relays(site)
            sent_before = len(site.sent)
            if request[0] == "halt":
                if request[1]:
                    actuator.halt(ADMIN, "property test")
                else:
                    actuator.resume(ADMIN, "property test")
            else:
                halted = actuator.killswitch.state.halted
                with contextlib.suppress(PolicyRefusal):
                    actuator.request(AGENT, "test", [to_action(request)])
                if halted:
                    assert len(site.sent) == sent_before, "a command left during a halt"
            # exactly one audit record per request, allowed or refused
            assert actuator.audit.count() == records + 1
            records += 1
            after_relays = board_relays(site)
            for load in SITE.assets.loads:
                i = load.channel - 1
                if load.critical:
                    assert after_relays[i], f"critical load {load.id} was shed"
                if after_relays[i] != before_relays[i]:
                    times = switch_times.setdefault(i, [])
                    now = clock.time()
                    if times:
                        assert now - times[-1] >= SITE.policy.relay_min_dwell_s
                    recent = [t for t in times if now - t < 3600]
                    assert len(recent) < SITE.policy.relay_max_switches_per_hour
                    times.append(now)
        for command in site.sent:
            power = command.params.get("power_kw")
            if command.device == BATTERY.device:
                assert -BATTERY.max_charge_kw <= power <= BATTERY.max_discharge_kw
            if command.device == PEAKER.device and command.action == "set_power":
                assert PEAKER.min_kw <= power <= PEAKER.max_kw
            if command.device == SITE.assets.pv[0].device:
                assert 0 <= command.params["limit_kw"] <= SITE.assets.pv[0].peak_kw
        assert actuator.audit.verify().ok


class CrashAfterSend:
    """Delivers the command to the device, then the process 'dies' before the ack."""

    def __init__(self, site: TwinSite) -> None:
        self.site = site

    def send_command(self, command: Command, timeout_s: float) -> Ack:
        self.site.send_command(command, timeout_s)
        raise KeyboardInterrupt("crash between send and ack")


def test_a_crash_between_send_and_ack_never_actuates_twice(tmp_path: Path) -> None:
    clock = SimClock()
    site = TwinSite(SITE, clock)
    board = site.twins["relay-board-1"]
    crashing = make_actuator(SITE, site, tmp_path, sender=CrashAfterSend(site))
    action = Action(kind="set_relay", asset="ev-chargers", on=True)
    with pytest.raises(KeyboardInterrupt):
        crashing.request(AGENT, "toggle_relay", [action], request_id="req-1")
    assert board.relays[2] is True and board.commands_executed == 1
    crashing.audit.close()

    restarted = make_actuator(SITE, site, tmp_path)
    settled = restarted.reconcile()
    assert len(settled) == 1
    record = restarted.audit.get(settled[0])
    assert record.outcome == "reconciled"
    assert "switch ev-chargers on: took effect" in record.detail
    # the caller retries the same request: it gets the settled result, nothing is sent
    sent = len(site.sent)
    result = restarted.request(AGENT, "toggle_relay", [action], request_id="req-1")
    assert result.outcome == "reconciled" and len(site.sent) == sent
    assert board.commands_executed == 1
    # and the dwell counts the switching that happened before the crash
    with pytest.raises(PolicyRefusal, match="relay_dwell"):
        restarted.request(
            AGENT, "toggle_relay", [Action(kind="set_relay", asset="ev-chargers", on=False)]
        )


def test_a_device_that_gets_a_command_id_again_does_not_act_again(tmp_path: Path) -> None:
    clock = SimClock()
    site = TwinSite(SITE, clock)
    actuator = make_actuator(SITE, site, tmp_path)
    actuator.request(
        AGENT, "toggle_relay", [Action(kind="set_relay", asset="hvac-office", on=True)]
    )
    board = site.twins["relay-board-1"]
    executed = board.commands_executed
    again = site.send_command(site.sent[-1], 1.0)
    assert again.result == "ok" and board.commands_executed == executed


def test_two_agents_contending_for_one_asset_resolve_by_priority(tmp_path: Path) -> None:
    clock = SimClock()
    site = TwinSite(SITE, clock)
    actuator = make_actuator(SITE, site, tmp_path)
    arbitrage = Caller(name="arbitrage", role="agent")
    response = Caller(name="grid-response", role="daemon")
    actuator.acquire_lease(arbitrage, "battery", priority=30, duration_s=900)
    with pytest.raises(PolicyRefusal, match="lease") as refused:
        actuator.request(
            response,
            "set_setpoint",
            [Action(kind="set_battery_power", asset="battery", power_kw=10)],
        )
    assert "leased to arbitrage at priority 30" in str(refused.value)
    with pytest.raises(PolicyRefusal, match="arbitrage at priority 30"):
        actuator.acquire_lease(Caller(name="peak-shaving", role="agent"), "battery", 30, 60)
    grant = actuator.acquire_lease(response, "battery", priority=80, duration_s=300)
    assert grant.preempted is not None and grant.preempted.holder == "arbitrage"
    assert "preempted by grid-response" in actuator.leases.notices("arbitrage")[0]
    result = actuator.request(
        response, "set_setpoint", [Action(kind="set_battery_power", asset="battery", power_kw=10)]
    )
    assert result.outcome == "executed"
    with pytest.raises(PolicyRefusal, match="lease"):
        actuator.request(
            arbitrage,
            "set_setpoint",
            [Action(kind="set_battery_power", asset="battery", power_kw=-5)],
        )
    clock.advance(301)
    site.report()
    assert (
        actuator.request(
            arbitrage,
            "set_setpoint",
            [Action(kind="set_battery_power", asset="battery", power_kw=-5)],
        ).outcome
        == "executed"
    )


def test_halt_with_safe_state_commands_every_device_and_blocks_agents(tmp_path: Path) -> None:
    clock = SimClock()
    site = TwinSite(SITE, clock)
    actuator = make_actuator(SITE, site, tmp_path)
    actuator.request(
        AGENT, "toggle_relay", [Action(kind="set_relay", asset="ev-chargers", on=True)]
    )
    with pytest.raises(PolicyRefusal, match="role"):
        actuator.halt(OPERATOR, "not mine to do")
    actuator.halt(ADMIN, "storm warning", safe_state=True)
    assert board_relays(site) == SITE.device("relay-board-1").safe_state
    assert site.twins["bess-1"].setpoint_kw == 0.0
    clock.advance(600)
    site.report()
    with pytest.raises(PolicyRefusal, match="kill_switch"):
        actuator.request(
            AGENT, "toggle_relay", [Action(kind="set_relay", asset="ev-chargers", on=True)]
        )
    # the halt survives a restart of gridpilot
    again = make_actuator(SITE, site, tmp_path)
    assert again.killswitch.state.halted and again.killswitch.state.reason == "storm warning"
    again.resume(ADMIN, "storm passed")
    assert (
        again.request(
            AGENT, "toggle_relay", [Action(kind="set_relay", asset="ev-chargers", on=True)]
        ).outcome
        == "executed"
    )


def test_operator_direct_action_waits_for_confirmation(tmp_path: Path) -> None:
    clock = SimClock()
    site = TwinSite(SITE, clock)
    actuator = make_actuator(SITE, site, tmp_path)
    off = [Action(kind="set_relay", asset="server-room", on=False)]
    result = actuator.request(OPERATOR, "toggle_relay", off)
    assert result.outcome == "awaiting_confirmation" and site.sent == []
    done = actuator.request(OPERATOR, "toggle_relay", off, confirmed=True)
    assert done.outcome == "executed" and board_relays(site)[0] is False
