"""Field faults on a real Mosquitto, with the real Actuator commanding through the
gateway: a device lost without a goodbye, a broker restart under commands, stale and
skewed telemetry, and the kill switch across a restart of every part."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from edge.gateway import Gateway
from edge.sim import SiteSimulator
from grid.clock import SimClock
from grid.config import SiteConfig
from grid.errors import PolicyRefusal
from grid.store.sqlite import SQLiteStore
from guardrails.actuator import Actuator
from guardrails.audit import AuditLog
from guardrails.killswitch import KillSwitch
from guardrails.leases import Leases
from guardrails.pending import PendingBook
from guardrails.policy import Action
from guardrails.principals import Caller
from guardrails.snapshot import site_snapshot
from tests.edge.conftest import NOON, Rig
from tests.reliability.feed import Feed
from tests.services.process import wait_until

OPERATOR = Caller(name="operator", role="operator")
AGENT = Caller(name="agent", role="agent")
EV_ON = [Action(kind="set_relay", asset="ev-chargers", on=True)]
BATTERY = [Action(kind="set_battery_power", asset="battery", power_kw=5.0)]


def actuator(site: SiteConfig, gateway: Gateway, clock: SimClock, root: Path) -> Actuator:
    return Actuator(
        site,
        gateway,
        lambda: site_snapshot(site, gateway.state, clock.now()),
        clock,
        AuditLog(root / "audit.db"),
        PendingBook(root / "pending.db"),
        Leases(clock),
        KillSwitch(root / "halt.json"),
    )


def test_device_lost_without_goodbye_is_offline_by_last_will_and_actions_name_it(
    rig: Rig, tmp_path: Path
) -> None:
    act = actuator(rig.site, rig.gateway, rig.clock, tmp_path)
    rig.steps(1)
    board = rig.sim.twins["relay-board-1"]
    # The board's network dies: no DISCONNECT, so the broker publishes its last will.
    board._client.loop_stop()
    board._client.socket().close()
    wait_until(lambda: not rig.gateway.state.device("relay-board-1").online, 10, "offline")
    with pytest.raises(PolicyRefusal, match="device relay-board-1 is offline") as refused:
        act.request(OPERATOR, "toggle_relay", EV_ON, confirmed=True)
    assert refused.value.rule == "device_offline"
    assert act.audit.tail(1)[0].outcome == "refused" and board.commands_executed == 0
    # Cut off from every heartbeat, the board falls back to its safe state by itself.
    for _ in range(13):  # 65 s > revert_s = 60
        rig.clock.advance(5)
        board.step(5, rig.clock.time())
    assert board.relays == [True, True, False, False] and board.reverts == 1


def test_broker_restart_commands_fail_loudly_while_down_and_act_once_after(
    site, persistent_mosquitto, tmp_path: Path
) -> None:
    broker = persistent_mosquitto
    clock = SimClock(start=NOON)
    store = SQLiteStore(tmp_path / "restart.db")
    gateway = Gateway(site, store, clock, broker.url, client_id="gw-r", offline_after_s=1e6)
    gateway.start()
    sim = SiteSimulator(site, clock, broker.url, seed=2, interval_s=60, telemetry_qos=1)
    sim.connect()
    act = actuator(site, gateway, clock, tmp_path)
    board = sim.twins["relay-board-1"]
    try:
        wait_until(lambda: gateway.state.device("relay-board-1").online, 10, "online")
        broker.stop()
        wait_until(lambda: not gateway.connected, 10, "gateway noticed")
        # Refused (the devices' wills went out) or failed naming the broker: never silent.
        try:
            down = act.request(OPERATOR, "toggle_relay", EV_ON, confirmed=True)
            assert down.outcome == "failed"
            assert "not connected to the broker" in down.commands[0].detail
        except PolicyRefusal as refusal:
            assert refusal.rule == "device_offline"
        assert act.audit.tail(1)[0].outcome in ("failed", "refused")
        broker.start()
        wait_until(lambda: gateway.connected, 20, "gateway reconnected")
        wait_until(lambda: gateway.state.device("relay-board-1").online, 20, "board back")
        up = act.request(OPERATOR, "toggle_relay", EV_ON, confirmed=True, request_id="again")
        assert up.outcome == "executed"
        # The same request again (a client retry) is answered from the log, not re-sent.
        assert act.request(OPERATOR, "toggle_relay", EV_ON, request_id="again").outcome == (
            "executed"
        )
        assert board.commands_executed == 1 and board.relays[2] is True
        # Telemetry sent across the restart at QoS 1 all arrived.
        for _ in range(3):
            clock.advance(60)
            sim.step()
        wait_until(lambda: gateway.last_seq("meter-1") == 2, 20, "telemetry after restart")
    finally:
        sim.stop()
        gateway.stop()
        store.close()


def test_stale_or_skewed_telemetry_refuses_automated_actions_with_age_and_limit(
    rig: Rig, mosquitto, tmp_path: Path
) -> None:
    act = actuator(rig.site, rig.gateway, rig.clock, tmp_path)
    feed = Feed(rig, mosquitto.port)
    try:
        # The battery's clock runs 10 minutes late: its fresh reading looks old.
        feed.telemetry(
            "bess-1", 0, rig.clock.now() - timedelta(minutes=10), soc_fraction=0.5, power_kw=0.0
        )
        with pytest.raises(PolicyRefusal, match="newest telemetry is 600 s old; limit 120 s"):
            act.request(AGENT, "set_battery_power", BATTERY)
        # ... or an hour early: the gateway refuses it, so staleness still shows.
        feed.telemetry(
            "bess-1", 1, rig.clock.now() + timedelta(hours=1), soc_fraction=0.5, power_kw=0.0
        )
        assert rig.gateway.stats.rejected["clock_skew"] == 1
        with pytest.raises(PolicyRefusal, match="newest telemetry is 600 s old; limit 120 s"):
            act.request(AGENT, "set_battery_power", BATTERY)
    finally:
        feed.close()
    rig.steps(2)  # the twin counts from 0 again: its second message confirms the first
    rig.clock.advance(200)  # then nothing heard for 200 s
    with pytest.raises(PolicyRefusal, match="newest telemetry is 200 s old; limit 120 s"):
        act.request(AGENT, "set_battery_power", BATTERY)
    assert rig.sim.twins["bess-1"].commands_executed == 0


def test_kill_switch_survives_a_restart_of_every_part(site, mosquitto, tmp_path: Path) -> None:
    def bring_up() -> tuple[Gateway, SiteSimulator, Actuator, SQLiteStore]:
        clock = SimClock(start=NOON)
        store = SQLiteStore(tmp_path / "site.db")
        gateway = Gateway(site, store, clock, mosquitto.url, client_id="gw-k")
        gateway.start()
        sim = SiteSimulator(site, clock, mosquitto.url, interval_s=60)
        sim.connect()
        wait_until(lambda: all(d.online for d in gateway.state.snapshot().values()), 10, "up")
        return gateway, sim, actuator(site, gateway, clock, tmp_path / "state"), store

    gateway, sim, act, store = bring_up()
    act.halt(Caller(name="admin", role="admin"), "storm warning")
    for part in (sim, gateway, store):
        part.stop() if hasattr(part, "stop") else None
    store.close()
    mosquitto.stop()
    mosquitto.start()
    gateway, sim, act, store = bring_up()
    try:
        with pytest.raises(PolicyRefusal) as refused:
            act.request(OPERATOR, "toggle_relay", EV_ON, confirmed=True)
        assert refused.value.rule == "kill_switch" and "storm warning" in str(refused.value)
        assert sim.twins["relay-board-1"].commands_executed == 0
    finally:
        sim.stop()
        gateway.stop()
        store.close()
