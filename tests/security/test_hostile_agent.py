"""A hostile or mistaken agent, over HTTP against the simulated site on real Mosquitto.

Each attempt must be refused, leave every device as it was (read back from the
devices' own state messages), publish no command (an MQTT subscriber counts them),
and leave exactly one audit record naming the rule that refused it. The totals are
printed at the end of the run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.security.conftest import TALLY, HostileSite

AGENT, VIEWER, OPERATOR, ADMIN = (
    f"demo-{n}-token" for n in ("agent", "viewer", "operator", "admin")
)
DAEMON, ARBITRAGE = "demo-grid-response-token", "demo-arbitrage-token"
REASON = "hostile test"
HUGE = "x" * 100_000

# What each kind of device may be told to change; power and SoC move by themselves.
SETTABLE = {
    "relay_board": ("relays",),
    "battery_inverter": ("setpoint_kw", "import_cap_kw"),
    "pv_inverter": ("limit_kw",),
    "peaker": ("mode", "setpoint_kw"),
    "meter": (),
}


@dataclass(frozen=True)
class Attempt:
    id: str
    token: str | None
    tool: str
    arguments: dict[str, Any] | Callable[[HostileSite], dict[str, Any]]
    rule: str
    argument: str | None = None  # the argument an invalid_input refusal must name
    halted: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # raw HTTP attempts only
    http_status: int | None = None


def relay(load: str, on: bool, **extra: Any) -> dict[str, Any]:
    return {"load": load, "on": on, "reason": REASON, **extra}


def setpoint(asset: Any, power_kw: Any, **extra: Any) -> dict[str, Any]:
    return {"asset": asset, "power_kw": power_kw, "reason": REASON, **extra}


def plan_args(**update: Any) -> Callable[[HostileSite], dict[str, Any]]:
    def build(site: HostileSite) -> dict[str, Any]:
        return {"plan_id": site.plan["plan_id"], "plan_hash": site.plan["plan_hash"], **update}

    return build


def chatter(on_now: bool) -> Callable[[HostileSite], dict[str, Any]]:
    """Switch the relay switched at set-up straight back (inside its dwell)."""

    def build(site: HostileSite) -> dict[str, Any]:
        return relay("ev-chargers", site.plan["ev_on"] is not on_now)

    return build


ATTEMPTS: list[Attempt] = [
    # -- critical loads off, by automated callers --------------------------------------
    *[
        Attempt(
            f"critical-off-{who}-{load}", token, "toggle_relay", relay(load, False), "critical_load"
        )
        for who, token in (("agent", AGENT), ("daemon", DAEMON), ("arbitrage", ARBITRAGE))
        for load in ("server-room", "cold-store")
    ],
    Attempt(
        "critical-off-with-forged-token",
        AGENT,
        "toggle_relay",
        relay("server-room", False, confirmation_token="cfm_forged"),
        "confirmation",
    ),
    Attempt(
        "critical-off-via-plan-forged",
        AGENT,
        "dispatch",
        {"plan_id": "shed-server-room"},
        "plan_unknown",
    ),
    # -- relay chatter: the relay switched at set-up, switched again inside its dwell ---
    *[
        Attempt(f"chatter-{who}", token, "toggle_relay", chatter(True), "relay_dwell")
        for who, token in (
            ("agent", AGENT),
            ("daemon", DAEMON),
            ("arbitrage", ARBITRAGE),
            ("operator", OPERATOR),
            ("admin", ADMIN),
        )
    ],
    # -- battery, PV and peaker beyond their limits -------------------------------------
    *[
        Attempt(
            f"battery-{kw:g}kW-{who}",
            token,
            "set_setpoint",
            setpoint("battery", kw),
            "battery_power_limit",
        )
        for kw in (25.5, 100.0, -26.0, -1000.0, 99_999.0)
        for who, token in (("operator", OPERATOR), ("admin", ADMIN))
    ],
    Attempt(
        "battery-1e6kW",
        ADMIN,
        "set_setpoint",
        setpoint("battery", 1e6),
        "invalid_input",
        "power_kw",
    ),
    Attempt(
        "pv-negative-limit", OPERATOR, "set_setpoint", setpoint("pv-roof", -5.0), "pv_limit_range"
    ),
    Attempt("pv-above-peak", OPERATOR, "set_setpoint", setpoint("pv-roof", 25.0), "pv_limit_range"),
    Attempt(
        "peaker-below-min",
        OPERATOR,
        "set_setpoint",
        setpoint("gas-peaker", 5.0),
        "peaker_power_limit",
    ),
    Attempt(
        "peaker-above-max",
        ADMIN,
        "set_setpoint",
        setpoint("gas-peaker", 31.0),
        "peaker_power_limit",
    ),
    # -- NaN, infinity, bools and strings where numbers belong ---------------------------
    *[
        Attempt(
            f"power-{name}",
            AGENT,
            "set_setpoint",
            setpoint("battery", value),
            "invalid_input",
            "power_kw",
        )
        for name, value in (
            ("nan", float("nan")),
            ("inf", float("inf")),
            ("-inf", float("-inf")),
            ("true", True),
            ("false", False),
            ("string-25", "25"),
            ("string-nan", "NaN"),
            ("list", [5]),
            ("object", {"kw": 5}),
            ("null", None),
        )
    ],
    Attempt(
        "relay-on-string",
        AGENT,
        "toggle_relay",
        relay("ev-chargers", "false"),
        "invalid_input",
        "on",
    ),
    Attempt("relay-on-int", AGENT, "toggle_relay", relay("ev-chargers", 0), "invalid_input", "on"),
    Attempt(
        "lease-priority-float",
        AGENT,
        "lease",
        {"asset": "battery", "priority": 10.5},
        "invalid_input",
        "priority",
    ),
    Attempt(
        "lease-priority-string",
        AGENT,
        "lease",
        {"asset": "battery", "priority": "10"},
        "invalid_input",
        "priority",
    ),
    Attempt(
        "lease-duration-nan",
        AGENT,
        "lease",
        {"asset": "battery", "duration_s": float("nan")},
        "invalid_input",
        "duration_s",
    ),
    Attempt(
        "lease-duration-bool",
        AGENT,
        "lease",
        {"asset": "battery", "duration_s": True},
        "invalid_input",
        "duration_s",
    ),
    Attempt(
        "halt-safe-state-string",
        ADMIN,
        "halt",
        {"reason": REASON, "safe_state": "yes"},
        "invalid_input",
        "safe_state",
    ),
    Attempt(
        "forecast-horizon-string",
        AGENT,
        "forecast",
        {"target": "load", "horizon_hours": "24"},
        "invalid_input",
        "horizon_hours",
    ),
    Attempt(
        "forecast-horizon-48",
        AGENT,
        "forecast",
        {"target": "load", "horizon_hours": 48},
        "invalid_input",
        "horizon_hours",
    ),
    Attempt(
        "forecast-unknown-target",
        AGENT,
        "forecast",
        {"target": "weather"},
        "invalid_input",
        "target",
    ),
    Attempt(
        "optimize-unknown-solver",
        AGENT,
        "optimize",
        {"solver": "gurobi"},
        "invalid_input",
        "solver",
    ),
    Attempt(
        "optimize-weight-inf",
        AGENT,
        "optimize",
        {"objective_weights": {"energy": float("inf")}},
        "invalid_input",
        "objective_weights.energy",
    ),
    Attempt(
        "optimize-weight-unknown-term",
        AGENT,
        "optimize",
        {"objective_weights": {"ignore_limits": 1.0}},
        "invalid_input",
        "objective_weights.ignore_limits.[key]",
    ),
    Attempt(
        "history-window-float",
        AGENT,
        "grid_history",
        {"asset": "grid", "quantity": "power_kw", "window_s": 60.5},
        "invalid_input",
        "window_s",
    ),
    Attempt(
        "history-aggregate-unknown",
        AGENT,
        "grid_history",
        {"asset": "grid", "quantity": "power_kw", "aggregate": "median"},
        "invalid_input",
        "aggregate",
    ),
    Attempt(
        "reason-missing",
        AGENT,
        "toggle_relay",
        {"load": "ev-chargers", "on": True},
        "invalid_input",
        "reason",
    ),
    Attempt(
        "reason-oversized",
        AGENT,
        "toggle_relay",
        relay("ev-chargers", True) | {"reason": HUGE},
        "invalid_input",
        "reason",
    ),
    Attempt(
        "reason-too-short",
        AGENT,
        "toggle_relay",
        relay("ev-chargers", True) | {"reason": "x"},
        "invalid_input",
        "reason",
    ),
    # -- unknown and oversized ids -------------------------------------------------------
    Attempt(
        "relay-unknown-load",
        AGENT,
        "toggle_relay",
        relay("main-breaker", False),
        "invalid_input",
        "load",
    ),
    Attempt(
        "relay-nul-load",
        AGENT,
        "toggle_relay",
        relay("server-room\x00", False),
        "invalid_input",
        "load",
    ),
    Attempt(
        "relay-bidi-load",
        AGENT,
        "toggle_relay",
        relay("\u202eserver-room", False),
        "invalid_input",
        "load",
    ),
    Attempt("relay-100k-load", AGENT, "toggle_relay", relay(HUGE, False), "invalid_input", "load"),
    Attempt(
        "relay-load-as-number", AGENT, "toggle_relay", relay(3, False), "invalid_input", "load"
    ),
    Attempt(
        "setpoint-on-a-load",
        OPERATOR,
        "set_setpoint",
        setpoint("server-room", 1.0),
        "invalid_input",
        "asset",
    ),
    Attempt(
        "setpoint-on-a-device-id",
        OPERATOR,
        "set_setpoint",
        setpoint("bess-1", 1.0),
        "invalid_input",
        "asset",
    ),
    Attempt(
        "setpoint-injection-id",
        OPERATOR,
        "set_setpoint",
        setpoint("battery'; DROP TABLE audit;--", 1.0),
        "invalid_input",
        "asset",
    ),
    Attempt(
        "lease-unknown-asset", AGENT, "lease", {"asset": "no-such-asset"}, "invalid_input", "asset"
    ),
    Attempt(
        "lease-1MB-asset", AGENT, "lease", {"asset": "a" * 1_000_000}, "invalid_input", "asset"
    ),
    Attempt("lease-nul-asset", AGENT, "lease", {"asset": "battery\x00"}, "invalid_input", "asset"),
    Attempt(
        "history-path-asset",
        VIEWER,
        "grid_history",
        {"asset": "../../etc/passwd", "quantity": "power_kw"},
        "invalid_input",
        "asset",
    ),
    Attempt(
        "history-huge-quantity",
        VIEWER,
        "grid_history",
        {"asset": "grid", "quantity": HUGE},
        "invalid_input",
        "quantity",
    ),
    Attempt(
        "audit-huge-principal",
        VIEWER,
        "audit_log",
        {"principal": HUGE},
        "invalid_input",
        "principal",
    ),
    # -- forged, edited and foreign plans ------------------------------------------------
    Attempt("plan-forged-id", AGENT, "dispatch", {"plan_id": "0123456789abcdef"}, "plan_unknown"),
    Attempt(
        "plan-foreign-id",
        OPERATOR,
        "dispatch",
        {"plan_id": "plan-from-another-site"},
        "plan_unknown",
    ),
    Attempt("plan-oversized-id", AGENT, "dispatch", {"plan_id": HUGE}, "invalid_input", "plan_id"),
    Attempt("plan-edited-hash", AGENT, "dispatch", plan_args(plan_hash="0" * 64), "plan_changed"),
    Attempt(
        "plan-reversed-hash",
        DAEMON,
        "dispatch",
        lambda s: plan_args(plan_hash=s.plan["plan_hash"][::-1])(s),
        "plan_changed",
    ),
    Attempt(
        "plan-foreign-hash",
        ARBITRAGE,
        "dispatch",
        plan_args(plan_hash=hashlib.sha256(b"another plan").hexdigest()),
        "plan_changed",
    ),
    Attempt(
        "plan-oversized-hash",
        AGENT,
        "dispatch",
        plan_args(plan_hash="f" * 65),
        "invalid_input",
        "plan_hash",
    ),
    # -- actions during a halt -----------------------------------------------------------
    *[
        Attempt(f"halted-{tool}-{who}", token, tool, args, "kill_switch", halted=True)
        for who, token in (("agent", AGENT), ("daemon", DAEMON), ("operator", OPERATOR))
        for tool, args in (
            ("toggle_relay", relay("hvac-office", False)),
            ("set_setpoint", setpoint("battery", 2.0)),
            ("dispatch", plan_args()),
        )
    ],
    Attempt(
        "halted-peaker-start",
        ARBITRAGE,
        "set_setpoint",
        setpoint("gas-peaker", 20.0),
        "kill_switch",
        halted=True,
    ),
    Attempt(
        "halted-resume-by-operator", OPERATOR, "resume", {"reason": REASON}, "role", halted=True
    ),
    # -- lease grabs above the role's maximum --------------------------------------------
    Attempt(
        "lease-agent-100", AGENT, "lease", {"asset": "battery", "priority": 100}, "lease_priority"
    ),
    Attempt(
        "lease-agent-51", AGENT, "lease", {"asset": "ev-chargers", "priority": 51}, "lease_priority"
    ),
    Attempt(
        "lease-agent-24h",
        AGENT,
        "lease",
        {"asset": "ev-chargers", "priority": 10, "duration_s": 86_400},
        "lease_duration",
    ),
    Attempt(
        "lease-arbitrage-90",
        ARBITRAGE,
        "lease",
        {"asset": "battery", "priority": 90},
        "lease_priority",
    ),
    Attempt(
        "lease-daemon-81", DAEMON, "lease", {"asset": "battery", "priority": 81}, "lease_priority"
    ),
    Attempt(
        "lease-daemon-5h",
        DAEMON,
        "lease",
        {"asset": "battery", "priority": 80, "duration_s": 18_000},
        "lease_duration",
    ),
    Attempt(
        "lease-operator-95",
        OPERATOR,
        "lease",
        {"asset": "battery", "priority": 95},
        "lease_priority",
    ),
    Attempt("lease-viewer", VIEWER, "lease", {"asset": "battery", "priority": 1}, "role"),
    # -- role escalation -----------------------------------------------------------------
    Attempt("viewer-toggle", VIEWER, "toggle_relay", relay("ev-chargers", False), "role"),
    Attempt("viewer-setpoint", VIEWER, "set_setpoint", setpoint("battery", 2.0), "role"),
    Attempt("viewer-dispatch", VIEWER, "dispatch", plan_args(), "role"),
    Attempt("viewer-optimize", VIEWER, "optimize", {"horizon_hours": 1}, "role"),
    Attempt("viewer-halt", VIEWER, "halt", {"reason": REASON}, "role"),
    Attempt("agent-halt", AGENT, "halt", {"reason": REASON, "safe_state": True}, "role"),
    Attempt("daemon-halt", DAEMON, "halt", {"reason": REASON}, "role"),
    Attempt("operator-halt", OPERATOR, "halt", {"reason": REASON}, "role"),
    Attempt("agent-resume", AGENT, "resume", {"reason": REASON}, "role"),
    Attempt("viewer-resume", VIEWER, "resume", {"reason": REASON}, "role"),
    Attempt(
        "unknown-tool", AGENT, "toggle_relay_force", relay("server-room", False), "unknown_tool"
    ),
    Attempt("unknown-tool-huge-name", AGENT, HUGE[:5000], {}, "unknown_tool"),
    # -- missing and wrong tokens, foreign Host and Origin -------------------------------
    *[
        Attempt(
            f"http-{name}",
            None,
            "toggle_relay",
            relay("server-room", False),
            rule,
            headers=headers,
            http_status=status,
        )
        for name, headers, status, rule in (
            ("no-token", {}, 401, "auth"),
            ("wrong-token", {"Authorization": "Bearer demo-admin-token-x"}, 401, "auth"),
            ("empty-bearer", {"Authorization": "Bearer"}, 401, "auth"),
            ("basic-auth", {"Authorization": "Basic YWRtaW46YWRtaW4="}, 401, "auth"),
            (
                "hash-as-token",
                {"Authorization": "Bearer " + hashlib.sha256(ADMIN.encode()).hexdigest()},
                401,
                "auth",
            ),
            ("huge-token", {"Authorization": "Bearer " + "a" * 8000}, 401, "auth"),
            (
                "foreign-host",
                {"Authorization": f"Bearer {ADMIN}", "Host": "evil.example"},
                421,
                "host",
            ),
            (
                "foreign-origin",
                {"Authorization": f"Bearer {ADMIN}", "Origin": "http://evil.example"},
                403,
                "origin",
            ),
        )
    ],
    # -- expired plans: last, since the plan clock is moved past the plan's validity -----
    Attempt("plan-expired-agent", AGENT, "dispatch", plan_args(), "plan_expired"),
    Attempt("plan-expired-operator", OPERATOR, "dispatch", plan_args(), "plan_expired"),
]


@pytest.fixture(scope="module")
def armed(hostile_site: HostileSite) -> HostileSite:
    """The site with one relay just switched (its dwell running) and one fresh plan."""
    s = hostile_site
    relays = {r["load"]: r["on"] for r in s.ok(ADMIN, "grid_state")["relays"]}
    done = s.confirmed(ADMIN, "toggle_relay", **relay("ev-chargers", not relays["ev-chargers"]))
    assert done["status"] == "executed", done
    s.plan["ev_on"] = not relays["ev-chargers"]
    made = s.ok(ADMIN, "optimize", horizon_hours=1)
    s.plan.update(plan_id=made["plan_id"], plan_hash=made["plan_hash"])
    return s


def settable(s: HostileSite) -> dict[str, dict[str, Any]]:
    out = {}
    for device, state in s.runtime.live.snapshot().items():
        keys = SETTABLE[state.kind]
        out[device] = {k: state.state.get(k) for k in keys}
    return out


def set_halt(s: HostileSite, halted: bool) -> None:
    if s.runtime.actuator.killswitch.state.halted != halted:
        tool = "halt" if halted else "resume"
        s.ok(ADMIN, tool, reason="hostile test set-up")


def attempt_once(s: HostileSite, a: Attempt) -> tuple[str, int | None]:
    """Make the attempt; returns the text the caller read and the HTTP status if refused there."""
    arguments = a.arguments(s) if callable(a.arguments) else a.arguments
    if a.http_status is not None:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": a.tool, "arguments": arguments},
        }
        headers = {**s.rpc.headers(ADMIN), **a.headers}
        if "Authorization" not in a.headers:
            headers.pop("Authorization", None)
        response = s.rpc.post(body, headers)
        return response.text, response.status_code
    result = s.rpc.call(a.token, a.tool, json.loads(json.dumps(arguments)))
    assert result.get("isError"), f"{a.id} was not refused: {result.get('structuredContent')}"
    return s.text(result), None


@pytest.mark.parametrize("a", ATTEMPTS, ids=[a.id for a in ATTEMPTS])
def test_a_hostile_attempt_is_refused_changes_nothing_and_is_audited_once(
    armed: HostileSite, a: Attempt
) -> None:
    s = armed
    set_halt(s, a.halted)
    if a.rule == "plan_expired":
        s.plan_wall.advance(s.runtime.site.policy.plan_ttl_s + 1)
    if a.token is not None:
        s.rpc.session(a.token)
    audit = s.runtime.actuator.audit
    before_seq = audit.count()
    before_state, before_cmds = settable(s), s.spy.count
    TALLY["attempts"] += 1

    text, status = attempt_once(s, a)

    after_state = settable(s)
    commands = s.spy.count - before_cmds
    TALLY["unsafe_actuations"] += commands + (after_state != before_state)
    records = [r for r in audit.tail(10) if r.seq > before_seq]
    if len(records) != 1:
        TALLY["missing_from_audit"] += 1
    assert commands == 0 and after_state == before_state, f"{a.id} changed the site"
    if status is not None:
        assert status == a.http_status, text
    else:
        assert f"Refused by rule '{a.rule}'" in text, text
        assert len(text) < 800, f"{len(text)} characters of error text"
        assert "Traceback" not in text and HUGE[:1000] not in text
    assert len(records) == 1, [(r.action, r.outcome, r.detail[:80]) for r in records]
    record = records[0]
    denied = [r for r in record.decision["results"] if not r["allowed"]]
    assert record.outcome == "refused" and denied[0]["rule"] == a.rule, record.detail
    if a.argument is not None:
        assert denied[0]["field"] == a.argument, denied[0]
    body = record.model_dump_json()
    assert len(body) < 60_000, "the audit record kept an oversized argument"
    for token in (AGENT, VIEWER, OPERATOR, ADMIN, DAEMON, ARBITRAGE, "cfm_forged"):
        assert token not in body, "a token reached the audit log"


def test_the_suite_makes_at_least_100_attempts() -> None:
    assert len(ATTEMPTS) >= 100


def test_the_audit_chain_holds_after_the_attempts(armed: HostileSite) -> None:
    assert armed.runtime.actuator.audit.verify().ok


def test_a_token_presented_by_another_principal_stays_with_its_owner(armed: HostileSite) -> None:
    s = armed
    set_halt(s, False)
    args = setpoint("battery", 1.5)
    preview = s.ok(OPERATOR, "set_setpoint", **args)
    token = preview["confirmation_token"]
    stolen = s.rpc.call(ADMIN, "set_setpoint", {**args, "confirmation_token": token})
    assert stolen.get("isError") and "another principal" in s.text(stolen)
    assert s.runtime.actuator.audit.tail(1)[0].principal == "admin"
    done = s.ok(OPERATOR, "set_setpoint", **args, confirmation_token=token)
    assert done["status"] == "executed"
    assert s.runtime.live.device("bess-1").state["setpoint_kw"] == 1.5
