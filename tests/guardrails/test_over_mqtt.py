"""The guardrails on a live simulated site: real Mosquitto, the gateway, device twins
speaking MQTT. Dwell, rate limit, lease preemption, the halt, crash recovery and the
offline and stale-data interlocks, each shown by what the devices report and by the
commands seen on the broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.runtime import Runtime, open_runtime
from edge.protocol import Ack, Command
from edge.sim.faults import Fault
from grid.clock import SimClock
from grid.errors import PolicyRefusal
from guardrails.actuator import Actuator
from guardrails.audit import AuditLog
from guardrails.killswitch import KillSwitch
from guardrails.leases import Leases
from guardrails.pending import PendingBook
from guardrails.policy import Action
from guardrails.principals import Caller, caller_named
from tests.mcp_server.conftest import CommandSpy, site_for, wait_for_telemetry, wait_until_trusted
from tests.services.mosquitto import MosquittoServer

SPEED = 10.0
RATE_LIMIT = 3  # actions per minute per principal, low so the test reaches it quickly


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, CommandSpy]]:
    root = tmp_path_factory.mktemp("guardrails-mqtt")
    broker = MosquittoServer(root)
    broker.start()
    site = site_for(root, broker.url)
    policy = site.policy.model_copy(update={"actions_per_minute_per_principal": RATE_LIMIT})
    rt = open_runtime(
        site.model_copy(update={"policy": policy}), clock=SimClock(speed=SPEED), simulate=True
    )
    spy = CommandSpy(broker.url, site.site.name)
    try:
        wait_for_telemetry(rt)
        wait_until_trusted(rt)
        yield rt, spy
    finally:
        spy.stop()
        rt.close()
        broker.stop()


@pytest.fixture(autouse=True)
def fresh_minute(live: tuple[Runtime, CommandSpy]) -> None:
    """Each test starts with every principal's rate-limit window empty."""
    rt, _ = live
    skip(rt, 61)
    wait_until_trusted(rt)


def skip(rt: Runtime, seconds: float, wait: bool = True) -> None:
    """Move the site clock on in small steps, so heartbeats and telemetry keep flowing
    (a relay board left without heartbeat for revert_s would revert to its safe state)."""
    assert isinstance(rt.clock, SimClock)
    while seconds > 0:
        step = min(seconds, 15.0)
        rt.clock.advance(step)
        seconds -= step
        time.sleep(0.1)
    if wait:
        wait_for_telemetry(rt)


def relays(rt: Runtime) -> list[bool]:
    return rt.live.device("relay-board-1").state["relays"]


def battery_setpoint(rt: Runtime) -> float | None:
    return rt.live.device("bess-1").state.get("setpoint_kw")


def relay(load: str, on: bool) -> list[Action]:
    return [Action(kind="set_relay", asset=load, on=on)]


def battery(kw: float) -> list[Action]:
    return [Action(kind="set_battery_power", asset="battery", power_kw=kw)]


def test_the_dwell_holds_a_relay_switched_over_mqtt(live) -> None:
    rt, spy = live
    daemon = caller_named(rt.site, "grid-response")
    on = relays(rt)[3]
    sent = spy.count
    done = rt.actuator.request(daemon, "toggle_relay", relay("hvac-office", not on))
    assert done.outcome == "executed" and done.commands[0].result == "ok"
    assert relays(rt)[3] is (not on) and spy.settled(sent + 1) == sent + 1
    with pytest.raises(PolicyRefusal, match="relay_dwell"):
        rt.actuator.request(daemon, "toggle_relay", relay("hvac-office", on))
    assert relays(rt)[3] is (not on) and spy.settled(sent + 1) == sent + 1
    skip(rt, rt.site.policy.relay_min_dwell_s + 1)
    wait_until_trusted(rt)
    back = rt.actuator.request(daemon, "toggle_relay", relay("hvac-office", on))
    assert back.outcome == "executed" and relays(rt)[3] is on and spy.settled(sent + 2) == sent + 2


def test_the_rate_limit_stops_a_busy_principal_over_mqtt(live) -> None:
    rt, spy = live
    arbitrage = caller_named(rt.site, "arbitrage")
    for kw in (1.0, 2.0, 1.0)[:RATE_LIMIT]:
        assert rt.actuator.request(arbitrage, "set_setpoint", battery(kw)).outcome == "executed"
    sent, before = spy.count, battery_setpoint(rt)
    with pytest.raises(PolicyRefusal, match="rate_limit"):
        rt.actuator.request(arbitrage, "set_setpoint", battery(3.0))
    assert spy.settled(sent) == sent and battery_setpoint(rt) == before == 1.0
    # another principal is not slowed down by it
    other = caller_named(rt.site, "peak-shaving")
    assert rt.actuator.request(other, "set_setpoint", battery(0.0)).outcome == "executed"
    assert battery_setpoint(rt) == 0.0


def test_a_higher_lease_preempts_and_only_its_holder_acts_over_mqtt(live) -> None:
    rt, spy = live
    arbitrage = caller_named(rt.site, "arbitrage")
    response = caller_named(rt.site, "grid-response")
    rt.actuator.acquire_lease(arbitrage, "battery", priority=30, duration_s=600)
    sent = spy.count
    with pytest.raises(PolicyRefusal, match="leased to arbitrage"):
        rt.actuator.request(response, "set_setpoint", battery(4.0))
    assert spy.settled(sent) == sent
    grant = rt.actuator.acquire_lease(response, "battery", priority=80, duration_s=600)
    assert grant.preempted is not None and grant.preempted.holder == "arbitrage"
    assert rt.actuator.request(response, "set_setpoint", battery(4.0)).outcome == "executed"
    assert battery_setpoint(rt) == 4.0 and spy.settled(sent + 1) == sent + 1
    with pytest.raises(PolicyRefusal, match="leased to grid-response"):
        rt.actuator.request(arbitrage, "set_setpoint", battery(-4.0))
    assert battery_setpoint(rt) == 4.0 and spy.settled(sent + 1) == sent + 1
    operator = caller_named(rt.site, "operator")
    assert rt.actuator.release_lease(operator, "battery").holder == "grid-response"
    assert "broke the lease of grid-response" in rt.actuator.audit.tail(1)[0].detail
    assert rt.actuator.request(arbitrage, "set_setpoint", battery(0.0)).outcome == "executed"


def test_a_halt_with_safe_state_reaches_every_device_and_stops_agents(live) -> None:
    rt, spy = live
    admin, agent = caller_named(rt.site, "admin"), caller_named(rt.site, "agent")
    sent = spy.count
    rt.actuator.halt(admin, "storm warning", safe_state=True)
    try:
        assert relays(rt) == rt.site.device("relay-board-1").safe_state
        assert battery_setpoint(rt) == 0.0
        assert rt.live.device("peaker-1").state["mode"] == "off"
        commanded = spy.settled(sent + 6) - sent
        assert commanded >= 6  # four relays, the battery, the peaker
        with pytest.raises(PolicyRefusal, match="kill_switch"):
            rt.actuator.request(agent, "set_setpoint", battery(2.0))
        assert spy.settled(sent + commanded) - sent == commanded and battery_setpoint(rt) == 0.0
    finally:
        rt.actuator.resume(admin, "storm passed")
    assert rt.actuator.request(agent, "set_setpoint", battery(2.0)).outcome == "executed"
    assert battery_setpoint(rt) == 2.0


class CrashAfterSend:
    """Sends the command over MQTT and waits for its ack, then the process 'dies'."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway

    def send_command(self, command: Command, timeout_s: float) -> Ack:
        self.gateway.send_command(command, timeout_s)
        raise KeyboardInterrupt("crash between send and audit")


def actuator_on(rt: Runtime, root: Path, sender) -> Actuator:
    """An Actuator on the live site's gateway with its own state files (a 'process')."""
    return Actuator(
        rt.site,
        sender,
        rt.snapshot,
        rt.clock,
        AuditLog(root / "audit.db"),
        PendingBook(root / "pending.db"),
        Leases(rt.clock),
        KillSwitch(root / "halt.json"),
    )


def test_a_crash_after_send_is_reconciled_from_device_state_never_resent(
    live, tmp_path: Path
) -> None:
    rt, spy = live
    gateway = rt.field_side.gateway
    operator = Caller(name="operator", role="operator")
    on = relays(rt)[2]
    wanted = relay("ev-chargers", not on)
    crashing = actuator_on(rt, tmp_path, CrashAfterSend(gateway))
    sent = spy.count
    with pytest.raises(KeyboardInterrupt):
        crashing.request(operator, "toggle_relay", wanted, confirmed=True, request_id="req-9")
    assert relays(rt)[2] is (not on) and spy.settled(sent + 1) == sent + 1
    crashing.audit.close()

    restarted = actuator_on(rt, tmp_path, gateway)
    settled = restarted.reconcile()
    assert len(settled) == 1
    record = restarted.audit.get(settled[0])
    assert record.outcome == "reconciled"
    assert f"switch ev-chargers {'off' if on else 'on'}: took effect" in record.detail
    again = restarted.request(operator, "toggle_relay", wanted, confirmed=True, request_id="req-9")
    assert again.outcome == "reconciled" and spy.settled(sent + 1) == sent + 1
    with pytest.raises(PolicyRefusal, match="relay_dwell"):
        restarted.request(operator, "toggle_relay", relay("ev-chargers", on), confirmed=True)
    assert spy.settled(sent + 1) == sent + 1 and restarted.audit.verify().ok


def wait_until(check, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def test_an_offline_device_interlocks_agents_until_it_returns(live) -> None:
    rt, spy = live
    agent = caller_named(rt.site, "agent")
    sim = rt.field_side.simulator
    sim.inject(Fault(kind="device_offline", device="bess-1"))
    try:
        wait_until(lambda: not rt.live.device("bess-1").online)
        sent = spy.count
        with pytest.raises(PolicyRefusal, match="device_offline"):
            rt.actuator.request(agent, "set_setpoint", battery(2.5))
        assert spy.settled(sent) == sent
    finally:
        sim.clear("device_offline", "bess-1")
    wait_until(lambda: rt.live.device("bess-1").online)
    wait_until_trusted(rt)
    assert rt.actuator.request(agent, "set_setpoint", battery(2.5)).outcome == "executed"
    assert battery_setpoint(rt) == 2.5


def test_stale_telemetry_interlocks_agents_but_not_the_operator(live) -> None:
    rt, spy = live
    agent, operator = caller_named(rt.site, "agent"), caller_named(rt.site, "operator")
    sim = rt.field_side.simulator
    sim.inject(Fault(kind="dropped_sensor", device="bess-1"))
    try:
        skip(rt, rt.site.policy.stale_telemetry_s + 15, wait=False)
        sent, before = spy.count, battery_setpoint(rt)
        with pytest.raises(PolicyRefusal, match="stale_telemetry"):
            rt.actuator.request(agent, "set_setpoint", battery(-2.0))
        assert spy.settled(sent) == sent and battery_setpoint(rt) == before
        # a person is trusted to judge stale data: the operator is only asked to confirm
        ask = rt.actuator.request(operator, "set_setpoint", battery(-2.0))
        assert ask.outcome == "awaiting_confirmation" and spy.settled(sent) == sent
    finally:
        sim.clear("dropped_sensor", "bess-1")
    wait_for_telemetry(rt)
