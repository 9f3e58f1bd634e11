"""The plan executor on the simulated site over a real Mosquitto: a dispatched plan is
applied step by step through the Actuator, every step acked and audited, and the
devices go back to their defaults when it ends."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.runtime import Runtime, open_runtime
from forecasting.anomaly import assess
from grid.clock import SimClock
from grid.profiles import generate
from guardrails.principals import Caller
from optimization.inputs import initial_from_readings, window_inputs
from optimization.solve import plan as solve_plan
from tests.mcp_server.conftest import site_for, wait_for_telemetry
from tests.services.mosquitto import MosquittoServer
from tools.plan import DispatchRequest, PlanStatusRequest, dispatch, plan_status

STEP_S = 60  # one-minute steps on a clock 30 times the wall: a step every 2 s
SPEED = 30.0
NIGHT = datetime(2026, 1, 6, 1, 0, tzinfo=UTC)  # 02:00 in Berlin: no sun
AGENT = Caller(name="agent", role="agent")


@pytest.fixture
def rt(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[Runtime]:
    site = site_for(tmp_path, mosquitto.url)
    site = site.model_copy(update={"site": site.site.model_copy(update={"step_s": STEP_S})})
    runtime = open_runtime(site, clock=SimClock(start=NIGHT, speed=SPEED), simulate=True)
    try:
        wait_for_telemetry(runtime)
        # the anomaly interlock reads the store: wait until the gateway has written there
        wait_for(lambda: all(trusted(runtime, a) for a in ("battery", "pv-roof")), 60)
        yield runtime
    finally:
        runtime.close()


def trusted(rt: Runtime, asset: str) -> bool:
    return assess(rt.site, rt.store, asset, rt.clock.now(), registry_dir=rt.models_dir).trustworthy


def night_plan(rt: Runtime, steps: int, curtail_step: int | None = None):
    """A plan from the next step on, for the simulated site's own profiles; optionally
    one step that curtails the PV to 2 kW (as a plan would under an export limit)."""
    site, now = rt.site, rt.clock.now()
    start = now - timedelta(seconds=now.timestamp() % STEP_S)
    truth = generate(site, start, steps, seed=0)
    snap = rt.snapshot()
    initial = initial_from_readings(site, snap.soc_fraction, snap.relay_on, {}, 0.0)
    inputs = window_inputs(site, start, STEP_S, truth.load_kw, truth.pv_kw, initial)
    made = solve_plan(site, inputs, now=now)
    if curtail_step is not None:
        steps_ = list(made.steps)
        steps_[curtail_step] = steps_[curtail_step].model_copy(
            update={"pv_limit_kw": {"pv-roof": 2.0}, "pv_available_kw": {"pv-roof": 10.0}}
        )
        made = made.model_copy(update={"steps": steps_})
    return rt.plans.add(made)


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def pv_limit_kw(rt: Runtime) -> float:
    return float(rt.live.snapshot()["pv-inv-1"].state["limit_kw"])


def test_a_dispatched_plan_runs_step_by_step_and_releases_the_devices(rt: Runtime) -> None:
    stored = night_plan(rt, steps=5, curtail_step=1)
    outcome = dispatch(rt, AGENT, DispatchRequest(plan_id=stored.plan.id))
    assert outcome.status == "executed" and "armed" in outcome.summary

    def finished() -> bool:
        run = rt.executor.status(stored.plan.id)
        return run is not None and run.status != "running"

    wait_for(finished, timeout_s=60)
    run = plan_status(rt, AGENT, PlanStatusRequest(plan_id=stored.plan.id))
    assert run.status == "completed", run
    applied = [s for s in run.steps if s.outcome == "executed"]
    assert len(applied) >= 3
    times = [s.time for s in applied]
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
    assert gaps == {STEP_S}, times  # consecutive steps, each applied once
    # every step is in the audit log with its commands acked by the devices
    for record in applied:
        audited = rt.actuator.audit.get(record.audit_seq)
        assert audited is not None and audited.action == "dispatch"
        assert audited.arguments["step_time"] == record.time.isoformat()
        assert audited.outcome == "executed"
        assert audited.command_ids and len(audited.acks) == len(audited.command_ids)
        assert all(ack["result"] == "ok" for ack in audited.acks), audited.acks
    # the curtailing step capped the PV at 2 kW; the steps after it released it
    curtailed = next(s for s in applied if s.time == stored.plan.steps[1].time)
    assert "pv-roof" in curtailed.detail and "2" in curtailed.detail
    assert run.released and run.release_audit_seq is not None
    released = rt.actuator.audit.get(run.release_audit_seq)
    assert released.action == "plan_release" and released.outcome == "executed"
    assert pv_limit_kw(rt) == rt.site.assets.pv[0].peak_kw
    battery = rt.live.snapshot()["bess-1"].state
    assert battery["import_cap_kw"] is None and battery["setpoint_kw"] == 0.0


def test_a_plan_dispatched_at_night_leaves_pv_uncapped_in_the_morning(rt: Runtime) -> None:
    stored = night_plan(rt, steps=3)
    dispatch(rt, AGENT, DispatchRequest(plan_id=stored.plan.id))
    # at night the plan's PV output is its forecast, ~0 kW: never a cap
    assert pv_limit_kw(rt) == rt.site.assets.pv[0].peak_kw
    wait_for(lambda: rt.executor.status(stored.plan.id).status == "completed", 60)
    # morning comes (06:00 at 30x is 2 minutes of wall; the twin's limit is what the
    # sun will meet): nothing holds the inverter below its peak
    assert rt.executor.status(stored.plan.id).released
    assert pv_limit_kw(rt) == rt.site.assets.pv[0].peak_kw


def test_a_new_dispatch_supersedes_the_running_plan(rt: Runtime) -> None:
    first = night_plan(rt, steps=10)
    dispatch(rt, AGENT, DispatchRequest(plan_id=first.plan.id))
    second = night_plan(rt, steps=2)
    dispatch(rt, AGENT, DispatchRequest(plan_id=second.plan.id))
    run = rt.executor.status(first.plan.id)
    assert run.status == "superseded" and second.plan.id in (run.reason or "")
    assert rt.executor.status().plan_id == second.plan.id
