"""The MCP surface as a table: one frozen spec per tool, and one registrar.

The registrar publishes each tool's request model as its input schema, so clients
see the same enums (`Literal`), bounds and lengths the model enforces. The SDK is
told to pass arguments through untouched; the model then validates them strictly
(no bool or string turned into a number), and a refusal is audited with the field
and the check that failed, like any other refusal, before the caller reads it.
"""

# No `from __future__ import annotations`: the SDK evaluates the tool signatures built here.

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, PlainValidator, ValidationError

from forecasting.schema import Forecast
from grid.errors import PolicyRefusal
from guardrails.executor import PlanRun
from guardrails.policy import Action
from guardrails.principals import Caller
from mcp_server.auth import ServerState, current_caller
from mcp_server.errors import clip_arguments, first_problem, run_tool, tool_error
from tools import act, plan, review, state
from tools.context import Runtime

READ = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
PLAN = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
ACT = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
ACT_ONCE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
GUARD = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)


class Confirm(BaseModel):
    confirm: bool = Field(description="Carry out the action shown?")


# What a resolver hands back when it did not ask; told apart from a user's answer by
# identity, since the framework passes a resolver's own value through unchanged.
NOT_ASKED = Confirm(confirm=False)


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what a client sees, the function in `tools/` that does the work, and
    (for direct actions) the actions a person is asked to confirm."""

    name: str
    title: str
    description: str
    run: Callable[..., BaseModel]  # (runtime, caller[, request][, confirmed=])
    output: type[BaseModel]
    annotations: ToolAnnotations
    request: type[BaseModel] | None = None
    # The confirmation rule: the actions to preview, and the module-level resolver
    # that asks through elicitation (the SDK keys resolvers by their qualified name).
    confirm_actions: Callable[[Runtime, Any], list[Action]] | None = None
    resolver: Callable[..., Any] | None = None

    @property
    def read_only(self) -> bool:
        return bool(self.annotations.read_only_hint)


# -- confirmation through elicitation ------------------------------------------------


def _ask(ctx: Context, name: str, raw: dict[str, Any]) -> Any:
    """Ask through elicitation only when the arguments are valid, the policy wants a
    confirmation, the client can be asked, and no token is being redeemed."""
    spec = SPECS[name]
    caps = ctx.client_capabilities
    if raw.get("confirmation_token") not in (None, MISSING):
        return NOT_ASKED
    if caps is None or caps.elicitation is None or spec.confirm_actions is None:
        return NOT_ASKED
    st: ServerState = ctx.request_context.lifespan_context
    rt = st.runtime
    assert spec.request is not None
    try:
        req = spec.request.model_validate(_given(raw), context={"site": rt.site})
        actions = spec.confirm_actions(rt, req)
    except (ValidationError, PolicyRefusal):
        return NOT_ASKED  # the tool body refuses it, audited
    decision = rt.actuator.evaluate(current_caller(st), actions)
    if not (decision.allowed and decision.needs_confirmation):
        return NOT_ASKED
    what = "; ".join(a.describe() for a in actions)
    return Elicit(f"gridpilot {name}: {what}. Go ahead?", Confirm)


def confirm_relay(ctx: Context, load: Any, on: Any, reason: Any, confirmation_token: Any) -> Any:
    raw = {"load": load, "on": on, "reason": reason, "confirmation_token": confirmation_token}
    return _ask(ctx, "toggle_relay", raw)


def confirm_setpoint(
    ctx: Context, asset: Any, power_kw: Any, reason: Any, confirmation_token: Any
) -> Any:
    raw = {
        "asset": asset,
        "power_kw": power_kw,
        "reason": reason,
        "confirmation_token": confirmation_token,
    }
    return _ask(ctx, "set_setpoint", raw)


def _asked_yes(
    answer: ElicitationResult[Confirm], rt: Runtime, caller: Caller, name: str, req: BaseModel
) -> bool:
    """True when the person accepted through elicitation; False when nobody was asked;
    a declined or cancelled question (or a "no") is a refusal, audited like any other."""
    if isinstance(answer, AcceptedElicitation):
        if answer.data is NOT_ASKED:
            return False
        if answer.data.confirm:
            return True
    arguments = req.model_dump(mode="json", exclude={"confirmation_token"})
    refusal = PolicyRefusal("declined", f"the person declined to {name.replace('_', ' ')}")
    raise tool_error(rt.actuator.refuse(caller, name, arguments, refusal))


# -- the table ------------------------------------------------------------------------

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "ping",
        "Ping",
        "Check the server is alive; returns the site's clock time and who you are.",
        review.ping,
        review.Pong,
        READ,
    ),
    ToolSpec(
        "grid_state",
        "Grid state",
        "The site right now: grid import/export (kW), load, PV, battery power and state of "
        "charge, peaker, every relay, frequency, voltage, price, devices online, data age, "
        "halt status and leases. Call this first.",
        state.grid_state,
        state.GridState,
        READ,
    ),
    ToolSpec(
        "list_assets",
        "List assets",
        "Every asset of the site with its id, kind, ratings and limits (kW, kWh). Use the "
        "ids it returns in the other tools.",
        state.list_assets,
        state.AssetList,
        READ,
    ),
    ToolSpec(
        "grid_history",
        "Grid history",
        "Stored measurements of one asset's quantity over the last hours, raw or aggregated "
        "per window (e.g. the grid's power_kw per 15 min to see peaks).",
        state.grid_history,
        state.HistoryResult,
        READ,
        state.HistoryRequest,
    ),
    ToolSpec(
        "forecast",
        "Forecast",
        "Forecast load, PV, price or net load for up to 24 h at the site's step, with "
        "P10/P50/P90 bands. Says which method produced it (model or naive fallback).",
        plan.forecast,
        Forecast,
        READ,
        plan.ForecastRequest,
    ),
    ToolSpec(
        "optimize",
        "Optimize",
        "Plan battery, relays, peaker and PV curtailment over the horizon to minimise cost "
        "(energy, demand charge, degradation, shed load, fuel, switching). Changes nothing: "
        "returns a plan_id to pass to dispatch, its cost against doing nothing, and an "
        "explanation.",
        plan.optimize,
        plan.PlanSummary,
        PLAN,
        plan.OptimizeRequest,
    ),
    ToolSpec(
        "dispatch",
        "Dispatch plan",
        "Carry out a plan from optimize: applies the step that covers now, then each later "
        "step at its start (relays, setpoints), every step checked against every guardrail, "
        "until the plan ends, another is dispatched, the site halts or it drifts; devices "
        "then go back to their defaults. Follow it with plan_status. Refused if the plan "
        "expired, changed, or the site drifted from it.",
        plan.dispatch,
        act.ActionOutcome,
        ACT_ONCE,
        plan.DispatchRequest,
    ),
    ToolSpec(
        "plan_status",
        "Plan status",
        "Where a dispatched plan stands: running, completed, superseded, halted or stopped; "
        "each step applied with its outcome and audit record; whether devices went back to "
        "their defaults.",
        plan.plan_status,
        PlanRun,
        READ,
        plan.PlanStatusRequest,
    ),
    ToolSpec(
        "toggle_relay",
        "Toggle relay",
        "Switch one load's relay on or off on site. Critical loads are never switched off "
        "by agents. Operators may be asked to confirm: then call again with the "
        "confirmation_token from the answer.",
        act.toggle_relay,
        act.ActionOutcome,
        ACT,
        act.ToggleRelay,
        confirm_actions=lambda rt, req: act.relay_actions(req),
        resolver=confirm_relay,
    ),
    ToolSpec(
        "set_setpoint",
        "Set setpoint",
        "Set a battery's power (+ discharge / - charge, kW), a PV inverter's output limit "
        "(kW), or a peaker's output (kW; 0 stops it). Checked against physical limits, state "
        "of charge and the import/export limits.",
        act.set_setpoint,
        act.ActionOutcome,
        ACT,
        act.SetSetpoint,
        confirm_actions=act.setpoint_actions,
        resolver=confirm_setpoint,
    ),
    ToolSpec(
        "anomalies",
        "Anomalies",
        "Events of the last hours (anomalies, devices offline, sequence gaps, faults) and "
        "whether each asset's data is trustworthy enough for automated action now.",
        review.anomalies,
        review.AnomalyReport,
        READ,
        review.AnomalyRequest,
    ),
    ToolSpec(
        "policy",
        "Policy",
        "What you may do and why: your role, the site's limits, and optionally a dry run of "
        "a relay switch or setpoint against every rule (nothing is done).",
        review.policy,
        review.PolicyReport,
        READ,
        review.PolicyRequest,
    ),
    ToolSpec(
        "audit_log",
        "Audit log",
        "The most recent audit records: who asked for what, every rule's verdict, the "
        "commands sent, the acks and the state after; plus whether the hash chain verifies.",
        review.audit_log,
        review.AuditPage,
        READ,
        review.AuditRequest,
    ),
    ToolSpec(
        "lease",
        "Lease an asset",
        "Hold an asset so other agents cannot act on it for a while (higher priority "
        "preempts lower, up to your role's maximum), or release it. Operators and admins "
        "may release a lower-priority lease held by someone else.",
        act.lease,
        act.LeaseResult,
        GUARD,
        act.LeaseRequest,
    ),
    ToolSpec(
        "halt",
        "Halt the site",
        "Kill switch (admin): stop all automated actuation at once, optionally commanding "
        "every device to its safe state. Stays halted until resume.",
        act.halt,
        act.HaltResult,
        ACT,
        act.HaltRequest,
    ),
    ToolSpec(
        "resume",
        "Resume the site",
        "Lift a halt (admin), so agents may act again.",
        act.resume,
        act.HaltResult,
        GUARD,
        act.ResumeRequest,
    ),
)
SPECS = {spec.name: spec for spec in TOOLS}


# -- the registrar --------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def _as_is(value: Any) -> Any:
    return value


def _given(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if v is not MISSING}


def validate(spec: ToolSpec, rt: Runtime, caller: Caller, raw: dict[str, Any]) -> BaseModel:
    """The request model, strictly validated against the site; a refusal is audited
    naming the field and the check (rule `invalid_input`)."""
    assert spec.request is not None
    try:
        return spec.request.model_validate(raw, context={"site": rt.site})
    except ValidationError as exc:
        field, check, text = first_problem(exc)
        refusal = PolicyRefusal("invalid_input", f"{text} [{check}]")
        rt.actuator.refuse(caller, spec.name, clip_arguments(raw), refusal, field=field)
        raise tool_error(refusal) from None


def input_schema(spec: ToolSpec) -> dict[str, Any]:
    if spec.request is None:
        return {"type": "object", "properties": {}}
    schema = spec.request.model_json_schema()
    schema.pop("title", None)
    return schema


def make_tool(spec: ToolSpec, st: ServerState) -> Tool:
    """A Tool for `spec`: the SDK passes every argument through as given (so nothing is
    coerced or refused unaudited), and clients see the request model's own schema."""
    rt = st.runtime
    names = list(spec.request.model_fields) if spec.request else []

    async def call(**kwargs: Any) -> BaseModel:
        answer = kwargs.pop("answer", None)
        kwargs.pop("ctx", None)
        caller = current_caller(st)
        if spec.request is None:
            return await run_tool(lambda: spec.run(rt, caller))
        req = validate(spec, rt, caller, _given(kwargs))
        if spec.resolver is None:
            return await run_tool(lambda: spec.run(rt, caller, req))
        confirmed = _asked_yes(answer, rt, caller, spec.name, req)
        return await run_tool(lambda: spec.run(rt, caller, req, confirmed=confirmed))

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    if spec.resolver is not None:
        params.append(
            inspect.Parameter(
                "answer",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[ElicitationResult[Confirm], Resolve(spec.resolver)],
            )
        )
    for name in names:
        # A `str` annotation keeps the SDK from JSON-decoding string arguments, as it
        # would for a string field; the validator lets every value through unchanged.
        field = spec.request.model_fields[name]  # type: ignore[union-attr]
        kind = str if field.annotation is str else Any
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[kind, PlainValidator(_as_is)],
                default=Field(default_factory=lambda: MISSING),
            )
        )
    call.__signature__ = inspect.Signature(params, return_annotation=spec.output)  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in params} | {"return": spec.output}
    call.__name__ = spec.name
    tool = Tool.from_function(
        call,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        annotations=spec.annotations,
    )
    tool.parameters = input_schema(spec)
    return tool


def make_tools(st: ServerState, *, read_only: bool = False) -> list[Tool]:
    return [make_tool(spec, st) for spec in TOOLS if spec.read_only or not read_only]
