"""The daemons' decisions as pure functions of what they saw: no server needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents import arbitrage, grid_response, peak_shaver
from agents.view import Assets, State

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
ASSETS = Assets.model_validate(
    {
        "step_s": 900,
        "assets": [
            {
                "id": "battery",
                "kind": "battery",
                "limits": {
                    "max_charge_kw": 25,
                    "max_discharge_kw": 25,
                    "soc_min_fraction": 0.1,
                    "soc_max_fraction": 0.95,
                },
            },
            {"id": "gas-peaker", "kind": "peaker", "limits": {"max_kw": 30}},
            {"id": "server-room", "kind": "load", "critical": True, "priority": 10},
            {"id": "hvac-office", "kind": "load", "priority": 4, "limits": {"nominal_kw": 10}},
            {"id": "ev-chargers", "kind": "load", "priority": 2, "limits": {"nominal_kw": 22}},
            {
                "id": "grid",
                "kind": "grid",
                "limits": {"import_limit_kw": 60, "export_limit_kw": 20},
            },
        ],
    }
)
CFG = grid_response.Settings()


def state(at_s: float = 0, hz: float = 50.0, imp: float = 20.0, soc: float = 0.6, **kw) -> State:
    relays = [
        {"load": "server-room", "on": True, "critical": True},
        {"load": "hvac-office", "on": True, "critical": False},
        {"load": "ev-chargers", "on": True, "critical": False},
    ]
    return State(
        time=T0 + timedelta(seconds=at_s),
        grid_import_kw=imp,
        frequency_hz=hz,
        soc_fraction={"battery": soc},
        battery_kw={"battery": kw.get("battery_kw", 0.0)},
        peaker_kw={"gas-peaker": kw.get("peaker_kw", 0.0)},
        relays=relays,
    )


def step(memory: grid_response.Memory, seen: State) -> list[grid_response.Decision]:
    decisions = grid_response.decide(seen, ASSETS, memory, CFG)
    for d in decisions:
        grid_response.remember(memory, d, seen.time)
    return decisions


def test_grid_response_escalates_battery_then_peaker_then_sheds_lowest_priority() -> None:
    memory = grid_response.Memory()
    first = step(memory, state(0, hz=49.6))
    assert [c.tool for c in first[0].calls] == ["lease", "set_setpoint"]
    assert first[0].calls[1].arguments["power_kw"] == 25.0
    assert step(memory, state(10, hz=49.6)) == []  # the battery gets time to work
    second = step(memory, state(40, hz=49.6, battery_kw=25))
    assert second[0].calls[-1].arguments == {
        "asset": "gas-peaker",
        "power_kw": 30,
        "reason": second[0].calls[-1].arguments["reason"],
    }
    third = step(memory, state(80, hz=49.6, battery_kw=25, peaker_kw=30))
    shed = third[0].calls[-1]
    assert shed.tool == "toggle_relay" and shed.arguments["load"] == "ev-chargers"
    assert all(c.arguments.get("load") != "server-room" for d in third for c in d.calls)


def test_grid_response_restores_only_after_calm_and_dwell() -> None:
    memory = grid_response.Memory()
    step(memory, state(0, imp=58))  # import near the limit
    assert memory.battery_set == "battery"
    agent = grid_response.GridResponse(CFG)
    agent.memory = memory
    agent.decide((state(40, imp=20, battery_kw=25), ASSETS))  # calm starts
    assert agent.decide((state(100, imp=20, battery_kw=25), ASSETS)) == []  # not calm for long
    eased = agent.decide((state(200, imp=20, battery_kw=25), ASSETS))
    assert eased[0].calls[0].arguments["power_kw"] == 17.0  # eased off, not dropped


def test_grid_response_does_not_count_a_falling_import_as_a_ramp() -> None:
    memory = grid_response.Memory(last_seen=(T0, 40.0))
    assert grid_response.trouble(state(10, imp=5.0), ASSETS, CFG, memory) == []
    memory = grid_response.Memory(last_seen=(T0, 5.0))
    assert "ramped" in grid_response.trouble(state(10, imp=40.0), ASSETS, CFG, memory)[0]


PLAN = {
    "plan_id": "plan-1",
    "plan_hash": "h",
    "status": "optimal",
    "saving_eur": 1.5,
    "diagnosis": None,
    "next_steps": [{"battery_kw": {"battery": 10.0}}],
}


def test_arbitrage_dispatches_but_keeps_the_reserve() -> None:
    seen = arbitrage.Seen(state(soc=0.6), T0, PLAN, "outlook")
    calls = arbitrage.decide(seen, arbitrage.Settings(), 1800)[0].calls
    assert [c.tool for c in calls] == ["lease", "dispatch"]
    assert calls[0].arguments["priority"] == arbitrage.PRIORITY
    low = arbitrage.Seen(state(soc=0.25), T0, PLAN, "outlook")
    held = arbitrage.decide(low, arbitrage.Settings(), 1800)[0]
    assert held.calls[-1].tool == "set_setpoint" and held.calls[-1].arguments["power_kw"] == 0
    assert "reserve" in held.reason


SHAVER = peak_shaver.Settings(threshold_kw=28.0)


def shave(memory: peak_shaver.Memory, seen: State, peak: float, plan=None) -> list:
    decisions = peak_shaver.decide(
        peak_shaver.Seen(seen, T0, peak, 28.0, plan, ASSETS), SHAVER, memory, 1800
    )
    for d in decisions:
        peak_shaver.remember(memory, d)
    return decisions


def test_peak_shaver_charges_ahead_of_a_predicted_peak_but_never_discharges_early() -> None:
    # Predicted over the threshold, the import now well under it: no discharge (round
    # 1's shaver discharged on the forecast and raised the peak); it fills the battery
    # with the room under the target instead, the import staying under it.
    out = shave(peak_shaver.Memory(), state(imp=15.0), peak=35.0)
    kw = out[0].calls[-1].arguments["power_kw"]
    assert kw == -9.0 and 15.0 - kw <= 28.0 - 2 * SHAVER.margin_kw
    assert shave(peak_shaver.Memory(), state(imp=15.0, soc=0.94), peak=35.0) == []  # full
    assert shave(peak_shaver.Memory(), state(imp=15.0), peak=20.0) == []  # no peak coming


def test_peak_shaver_holds_the_peak_with_the_battery_before_switching_anything() -> None:
    memory = peak_shaver.Memory()
    first = shave(memory, state(imp=33.0), peak=35.0)
    assert [c.tool for c in first[0].calls] == ["lease", "set_setpoint"]
    assert first[0].calls[1].arguments["power_kw"] == 7.0  # 33 - (28 - 2 margin)
    assert len(first) == 1 and "no switching" in first[0].reason
    # The battery follows the load; the relays stay as they are.
    more = shave(memory, state(imp=28.0, battery_kw=7.0), peak=35.0)
    assert more[0].calls[1].arguments["power_kw"] == 9.0
    assert all(c.tool != "toggle_relay" for d in first + more for c in d.calls)


def test_peak_shaver_sheds_the_lowest_priority_load_only_when_the_battery_is_empty() -> None:
    memory = peak_shaver.Memory(battery_kw=5.0)
    out = shave(memory, state(imp=31.0, soc=0.11, battery_kw=5.0), peak=35.0)
    assert out[0].calls[-1].arguments["power_kw"] == 0.0  # nothing left to give
    shed = out[-1].calls[-1]
    assert shed.tool == "toggle_relay" and shed.arguments == {
        "load": "ev-chargers",
        "on": False,
        "reason": shed.arguments["reason"],
    }
    assert "rule-based fallback" in out[-1].reason and memory.shed == ["ev-chargers"]


def test_peak_shaver_dispatches_a_plan_only_if_it_keeps_the_import_under() -> None:
    shaving = {**PLAN, "next_steps": [{"battery_kw": {"battery": 8}, "grid_import_kw": 25.0}]}
    out = shave(peak_shaver.Memory(), state(imp=27.0), peak=35.0, plan=shaving)
    assert [c.tool for c in out[0].calls] == ["lease", "dispatch"]
    loose = {**PLAN, "next_steps": [{"battery_kw": {"battery": 0}, "grid_import_kw": 34.0}]}
    out = shave(peak_shaver.Memory(), state(imp=30.0), peak=35.0, plan=loose)
    assert [c.tool for c in out[0].calls] == ["lease", "set_setpoint"]
    assert "not a shaving plan" in out[0].reason
