"""The daemons against a real MCP server over HTTP, on real mosquitto, in simulated time.

A weak-grid fault makes the site's frequency sag with its import; the grid-response
actor must bring it back into band by acting through the tools, win the battery from
the arbitrage trader by lease priority, and ride out a server restart without
sending anything twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from itertools import pairwise

import anyio

from agents.arbitrage import Arbitrage
from agents.arbitrage import Settings as ArbitrageSettings
from agents.client import Backoff, Session, Target
from agents.daemon import Outcome, run
from agents.grid_response import GridResponse, Settings
from app.runtime import Runtime
from edge.sim.faults import Fault
from guardrails.principals import caller_named
from tests.agents.conftest import Endpoint
from tools import act

BAND = (49.8, 50.2)
# Escalation waits 90 simulated s (3 wall s): long enough for a loaded machine to see
# the battery take effect before the peaker is called for.
FAST = Settings(escalate_s=90.0, calm_s=20.0)


def token(principal: str) -> str:
    return f"demo-{principal}-token"


def session_for(endpoint: Endpoint, daemon) -> Session:
    return Session(
        Target(url=endpoint.url, token=token(daemon.role)), backoff=Backoff(first_s=0.1, max_s=0.5)
    )


async def run_until(
    daemon, endpoint: Endpoint, done: Callable[[], bool], timeout_s: float = 30.0, **kw
) -> tuple[Session, deque[Outcome]]:
    """Run `daemon` over HTTP until `done()` holds; fail after `timeout_s` wall seconds."""
    journal: deque[Outcome] = deque()
    session = Session(
        Target(url=endpoint.url, token=token(daemon.role)), backoff=Backoff(first_s=0.1, max_s=0.5)
    )
    if kw.get("once"):
        with anyio.fail_after(timeout_s):
            async with session:
                await run(daemon, session, journal=journal, **kw)
        return session, journal
    async with session, anyio.create_task_group() as tg:
        tg.start_soon(lambda: run(daemon, session, journal=journal, **kw))
        with anyio.fail_after(timeout_s):
            while not done():
                await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    return session, journal


def audit(rt: Runtime, since: datetime, principal: str, action: str | None = None) -> list:
    return rt.actuator.audit.query(principal=principal, since=since, action=action)


def frequency(rt: Runtime) -> float:
    found = rt.live.latest("grid", "frequency_hz")
    assert found is not None
    return found.value


def battery_to(rt: Runtime, power_kw: float) -> None:
    """An operator's setpoint, straight through the tool function (not a daemon's)."""
    admin = caller_named(rt.site, "admin")
    req = act.SetSetpoint(asset="battery", power_kw=power_kw, reason="test set-up")
    act.set_setpoint(rt, admin, req, confirmed=True)
    settle(rt, 15)


def make_import(rt: Runtime) -> None:
    """Battery idle; if PV covers the site, charge it so the site imports."""
    battery_to(rt, 0.0)
    if (rt.snapshot().grid_import_kw or 0.0) < 8.0:
        battery_to(rt, -15.0)


def sag_fault(rt: Runtime, dip_hz: float = 0.4) -> Fault:
    """A weak grid whose frequency sags `dip_hz` at the site's present import."""
    imp = rt.snapshot().grid_import_kw or 0.0
    assert imp > 3.0, imp
    return Fault(kind="frequency_sag", device="meter-1", magnitude=dip_hz * 60.0 / imp)


def settle(rt: Runtime, sim_s: float) -> None:
    rt.clock.sleep_sync(sim_s)


async def test_grid_response_answers_a_frequency_event_and_outranks_arbitrage(
    site_runtime: Runtime, endpoint: Endpoint
) -> None:
    rt = site_runtime
    sim = rt.field_side.simulator
    assert sim is not None
    start = rt.clock.now()
    trader = Arbitrage(ArbitrageSettings(horizon_hours=2), interval_s=0.5)
    responder = GridResponse(FAST, interval_s=0.2)
    trades: deque[Outcome] = deque()
    responses: deque[Outcome] = deque()
    make_import(rt)
    async with (
        session_for(endpoint, trader) as trader_session,
        session_for(endpoint, responder) as responder_session,
        anyio.create_task_group() as tg,
    ):
        # The trader holds the battery first, at its low priority.
        tg.start_soon(lambda: run(trader, trader_session, journal=trades))
        with anyio.fail_after(30):
            while not trades:
                await anyio.sleep(0.1)
        assert trades[0].calls[0].tool == "lease" and trades[0].calls[0].ok, trades[0]
        assert rt.actuator.leases.holder("battery").holder == "arbitrage"

        fault = sag_fault(rt)
        sim.inject(fault)
        injected = rt.clock.now()
        try:
            tg.start_soon(lambda: run(responder, responder_session, journal=responses))
            with anyio.fail_after(30):
                while not (
                    responder.memory.battery_set is not None and BAND[0] <= frequency(rt) <= BAND[1]
                ):
                    await anyio.sleep(0.05)
            back = rt.clock.now()
            acted = [o for o in responses if o.done]
            # it acted because it saw the frequency out of band, and nothing else
            assert acted[0].reason.startswith("frequency 49."), acted[0].reason
            assert "discharge battery" in acted[0].reason
            out_of_band = float(acted[0].reason.split()[1])
            assert [c.tool for c in acted[0].calls] == ["lease", "set_setpoint"]
            # it took the battery from the trader by priority, and the battery discharges
            holder = rt.actuator.leases.holder("battery")
            assert holder.holder == "grid-response" and holder.priority == 80
            grants = audit(rt, start, "grid-response", "lease_acquire")
            assert "preempting arbitrage" in grants[-1].detail
            executed = audit(rt, start, "grid-response", "set_setpoint")
            assert [r.outcome for r in executed] == ["executed"]
            assert executed[0].arguments["power_kw"] > 10
            settle(rt, 15)
            assert (rt.snapshot().battery_kw["battery"] or 0) > 10
            assert BAND[0] <= frequency(rt) <= BAND[1], frequency(rt)

            # A trader asking now is refused by the lease, and sends nothing.
            again = Arbitrage(ArbitrageSettings(horizon_hours=2))
            async with session_for(endpoint, again) as session:
                await run(again, session, once=True)
            refused = audit(rt, injected, "arbitrage", "lease_acquire")
            assert refused and refused[-1].outcome == "refused"
            assert "grid-response" in refused[-1].detail
            # (a dispatch of its own before the preemption was its right)
            dispatched = audit(rt, grants[-1].time, "arbitrage", "dispatch")
            assert all(r.outcome == "refused" for r in dispatched), dispatched
        finally:
            sim.clear("frequency_sag")
        tg.cancel_scope.cancel()
    battery_to(rt, 0.0)

    # From the stored meter readings: how long after the response the frequency was
    # back in band. (Injection to response depends on how busy the machine is, since
    # the simulated clock runs 30x the wall; it is printed, not asserted.)
    acted_at = executed[0].time
    rt.field_side.gateway.flush()
    samples = rt.store.query(rt.site.site.name, "grid", "frequency_hz", injected, back)
    before = [x for x in samples if x.time <= acted_at]
    after = [x for x in samples if x.time > acted_at]
    assert any(not BAND[0] <= x.value <= BAND[1] for x in before), before
    first_in = next(x for x in after if BAND[0] <= x.value <= BAND[1])
    print(
        f"\nfrequency event: {out_of_band:.3f} Hz after the sag; grid response acted "
        f"{(acted_at - injected).total_seconds():.0f} simulated s after the fault; back in "
        f"band {(first_in.time - acted_at).total_seconds():.0f} simulated s after that"
    )
    assert (first_in.time - acted_at).total_seconds() <= 30


async def test_daemon_rides_out_a_server_restart_without_acting_twice(
    site_runtime: Runtime, endpoint: Endpoint
) -> None:
    rt = site_runtime
    sim = rt.field_side.simulator
    assert sim is not None
    settle(rt, 30)
    start = rt.clock.now()
    responder = GridResponse(FAST, interval_s=0.2)
    journal: deque[Outcome] = deque()
    session = Session(
        Target(url=endpoint.url, token=token("grid-response")),
        backoff=Backoff(first_s=0.1, max_s=0.5),
    )
    make_import(rt)
    sim.inject(sag_fault(rt))
    try:
        async with session, anyio.create_task_group() as tg:
            tg.start_soon(lambda: run(responder, session, journal=journal))
            with anyio.fail_after(30):
                while responder.memory.battery_set is None:
                    await anyio.sleep(0.1)
            # the server goes away mid-run, with the event still going on
            await anyio.to_thread.run_sync(endpoint.stop)
            await anyio.sleep(1.5)
            await anyio.to_thread.run_sync(endpoint.start)
            sim.clear("frequency_sag")
            with anyio.fail_after(40):
                while responder.memory.leased:  # calm again: battery idle, lease released
                    await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
    finally:
        sim.clear("frequency_sag")
    assert session.connects >= 2, "the daemon never reconnected"
    setpoints = audit(rt, start, "grid-response", "set_setpoint")
    assert {r.outcome for r in setpoints} == {"executed"}
    powers = [r.arguments["power_kw"] for r in setpoints]
    # one full discharge before the restart, then eased back to idle after it: no
    # command sent twice, each a step down
    assert powers[0] == max(powers) and powers[-1] == 0.0, powers
    assert all(a > b for a, b in pairwise(powers)), powers
    releases = audit(rt, start, "grid-response", "lease_release")
    assert len(releases) == 1
    assert rt.actuator.leases.holder("battery") is None


async def test_dry_run_decides_and_logs_but_never_acts(
    site_runtime: Runtime, endpoint: Endpoint
) -> None:
    rt = site_runtime
    sim = rt.field_side.simulator
    assert sim is not None
    settle(rt, 30)
    start = rt.clock.now()
    make_import(rt)
    sim.inject(sag_fault(rt))
    try:
        with anyio.fail_after(10):
            while BAND[0] <= frequency(rt) <= BAND[1]:
                await anyio.sleep(0.05)
        responder = GridResponse(FAST, interval_s=0.2)
        _, journal = await run_until(responder, endpoint, lambda: True, once=True, dry_run=True)
    finally:
        sim.clear("frequency_sag")
    assert journal and "frequency" in journal[0].reason
    assert all(c.ok is None and "dry run" in c.answer for c in journal[0].calls)
    assert not audit(rt, start, "grid-response")
