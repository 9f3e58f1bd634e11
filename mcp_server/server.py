"""The MCP server: each tool is a thin typed wrapper over a function in `tools/`.

Parameters are flat (friendlier to models than one nested object); their
descriptions come from the tools' own input models, so they are written once.
Destructive tools confirm through elicitation when the client supports it, and
otherwise answer with a preview and a confirmation token.
"""

# No `from __future__ import annotations` here: the SDK evaluates tool signatures, and
# those use names local to build_server.

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from mcp.server import MCPServer
from mcp.server.auth.settings import AuthSettings
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from forecasting.service import Forecast
from grid.errors import PolicyRefusal
from guardrails.executor import PlanRun
from guardrails.policy import Action
from guardrails.principals import Caller
from mcp_server.auth import ServerState, SiteTokenVerifier, current_caller
from mcp_server.content import register_prompts, register_resources
from mcp_server.errors import run_tool, tool_error
from tools import act, plan, review, state
from tools.runtime import Runtime

INSTRUCTIONS = """\
gridpilot operates one power site (loads on relays, PV, a battery, a gas peaker, a grid
connection). Start with grid_state and list_assets. Look ahead with forecast; plan with
optimize (changes nothing) and carry a plan out with dispatch(plan_id). toggle_relay and
set_setpoint act directly. Every action passes guardrails: a refusal names the rule and
the numbers, and says what to do instead. Critical loads are never shed by agents. Units
are in every field name (kW, kWh, EUR/kWh, fraction 0-1, seconds)."""

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


def described(model: type[BaseModel], name: str) -> Any:
    """A Field carrying the description (and default) the input model gives `name`."""
    info = model.model_fields[name]
    return Field(description=info.description)


class Confirm(BaseModel):
    confirm: bool = Field(description="Carry out the action shown?")


# What a resolver hands back when it did not ask; told apart from a user's answer by
# identity, since the framework passes a resolver's own value through unchanged.
NOT_ASKED = Confirm(confirm=False)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], **values: Any) -> M:
    """Build a tool's input model, turning a validation error into readable ToolError text."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise tool_error(exc) from None


def _state(ctx: Context) -> ServerState:
    return ctx.request_context.lifespan_context


def _ask(ctx: Context, name: str, actions: list[Action], token: str | None) -> Any:
    """Ask through elicitation only when the policy wants a confirmation, the client can
    be asked, and no token is being redeemed; otherwise let the tool decide."""
    caps = ctx.client_capabilities
    if token is not None or caps is None or caps.elicitation is None:
        return NOT_ASKED
    st = _state(ctx)
    decision = st.runtime.actuator.evaluate(current_caller(st), actions)
    if not (decision.allowed and decision.needs_confirmation):
        return NOT_ASKED
    what = "; ".join(a.describe() for a in actions)
    return Elicit(f"gridpilot {name}: {what}. Go ahead?", Confirm)


def confirm_relay(ctx: Context, load: str, on: bool, confirmation_token: str | None = None) -> Any:
    actions = act.relay_actions(act.ToggleRelay(load=load, on=on, reason="preview"))
    return _ask(ctx, "toggle_relay", actions, confirmation_token)


def confirm_setpoint(
    ctx: Context, asset: str, power_kw: float, confirmation_token: str | None = None
) -> Any:
    rt = _state(ctx).runtime
    try:
        actions = act.setpoint_actions(
            rt, act.SetSetpoint(asset=asset, power_kw=power_kw, reason="preview")
        )
    except ValueError:
        return NOT_ASKED  # the tool itself reports the bad asset
    return _ask(ctx, "set_setpoint", actions, confirmation_token)


def build_server(
    runtime: Runtime, default_caller: Caller | None = None, *, http_url: str | None = None
) -> MCPServer:
    """An MCPServer over `runtime`. With `http_url`, bearer tokens are required."""
    st = ServerState(runtime=runtime, default_caller=default_caller)

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[ServerState]:
        yield st  # the runtime's life is its owner's: the server only borrows it

    auth_kwargs: dict[str, Any] = {}
    if http_url is not None:
        auth_kwargs = {
            "token_verifier": SiteTokenVerifier(runtime.site),
            "auth": AuthSettings(
                issuer_url=http_url, resource_server_url=http_url, validate_token_resource=False
            ),
        }
    server = MCPServer("gridpilot", instructions=INSTRUCTIONS, lifespan=lifespan, **auth_kwargs)
    rt = runtime

    def who() -> Caller:
        return current_caller(st)

    @server.tool(title="Ping", annotations=READ)
    async def ping() -> review.Pong:
        """Check the server is alive; returns the site's clock time and who you are."""
        caller = who()
        return await run_tool(lambda: review.ping(rt, caller))

    @server.tool(title="Grid state", annotations=READ)
    async def grid_state() -> state.GridState:
        """The site right now: grid import/export (kW), load, PV, battery power and state of
        charge, peaker, every relay, frequency, voltage, price, devices online, data age,
        halt status and leases. Call this first."""
        caller = who()
        return await run_tool(lambda: state.grid_state(rt, caller))

    @server.tool(title="List assets", annotations=READ)
    async def list_assets() -> state.AssetList:
        """Every asset of the site with its id, kind, ratings and limits (kW, kWh). Use the
        ids it returns in the other tools."""
        caller = who()
        return await run_tool(lambda: state.list_assets(rt, caller))

    HistReq = state.HistoryRequest

    @server.tool(title="Grid history", annotations=READ)
    async def grid_history(
        asset: Annotated[str, described(HistReq, "asset")],
        quantity: Annotated[str, described(HistReq, "quantity")],
        hours: Annotated[float, described(HistReq, "hours")] = 24,
        window_s: Annotated[int | None, described(HistReq, "window_s")] = 900,
        aggregate: Annotated[
            str, Field(description="mean, min, max, sum, first, last or count")
        ] = "mean",
    ) -> state.HistoryResult:
        """Stored measurements of one asset's quantity over the last hours, raw or
        aggregated per window (e.g. the grid's power_kw per 15 min to see peaks)."""
        caller = who()
        return await run_tool(
            lambda: state.grid_history(
                rt,
                caller,
                HistReq(
                    asset=asset,
                    quantity=quantity,
                    hours=hours,
                    window_s=window_s,
                    aggregate=aggregate,
                ),
            )
        )

    FcReq = plan.ForecastRequest

    @server.tool(title="Forecast", annotations=READ)
    async def forecast(
        target: Annotated[str, described(FcReq, "target")],
        horizon_hours: Annotated[float, described(FcReq, "horizon_hours")] = 24,
    ) -> Forecast:
        """Forecast load, PV, price or net load for up to 24 h at the site's step, with
        P10/P50/P90 bands. Says which method produced it (model or naive fallback)."""
        caller = who()
        return await run_tool(
            lambda: plan.forecast(rt, caller, FcReq(target=target, horizon_hours=horizon_hours))
        )

    OptReq = plan.OptimizeRequest

    @server.tool(title="Optimize", annotations=PLAN)
    async def optimize(
        horizon_hours: Annotated[float, described(OptReq, "horizon_hours")] = 24,
        solver: Annotated[str, Field(description="cbc (default) or highs")] = "cbc",
        objective_weights: Annotated[
            dict[str, float] | None, described(OptReq, "objective_weights")
        ] = None,
    ) -> plan.PlanSummary:
        """Plan battery, relays, peaker and PV curtailment over the horizon to minimise cost
        (energy, demand charge, degradation, shed load, fuel, switching). Changes nothing:
        returns a plan_id to pass to dispatch, its cost against doing nothing, and an
        explanation."""
        caller = who()
        return await run_tool(
            lambda: plan.optimize(
                rt,
                caller,
                OptReq(
                    horizon_hours=horizon_hours, solver=solver, objective_weights=objective_weights
                ),
            )
        )

    DispReq = plan.DispatchRequest

    @server.tool(title="Dispatch plan", annotations=ACT_ONCE)
    async def dispatch(
        plan_id: Annotated[str, described(DispReq, "plan_id")],
        plan_hash: Annotated[str | None, described(DispReq, "plan_hash")] = None,
    ) -> act.ActionOutcome:
        """Carry out a plan from optimize: applies the step that covers now, then each later
        step at its start (relays, setpoints), every step checked against every guardrail,
        until the plan ends, another is dispatched, the site halts or it drifts; devices
        then go back to their defaults. Follow it with plan_status. Refused if the plan
        expired, changed, or the site drifted from it."""
        caller = who()
        return await run_tool(
            lambda: plan.dispatch(rt, caller, DispReq(plan_id=plan_id, plan_hash=plan_hash))
        )

    StatusReq = plan.PlanStatusRequest

    @server.tool(title="Plan status", annotations=READ)
    async def plan_status(
        plan_id: Annotated[str | None, described(StatusReq, "plan_id")] = None,
    ) -> PlanRun:
        """Where a dispatched plan stands: running, completed, superseded, halted or
        stopped; each step applied with its outcome and audit record; whether devices went
        back to their defaults."""
        caller = who()
        return await run_tool(lambda: plan.plan_status(rt, caller, StatusReq(plan_id=plan_id)))

    RelayReq = act.ToggleRelay

    @server.tool(title="Toggle relay", annotations=ACT)
    async def toggle_relay(
        load: Annotated[str, described(RelayReq, "load")],
        on: Annotated[bool, described(RelayReq, "on")],
        reason: Annotated[str, described(RelayReq, "reason")],
        answer: Annotated[ElicitationResult[Confirm], Resolve(confirm_relay)],
        confirmation_token: Annotated[str | None, described(RelayReq, "confirmation_token")] = None,
    ) -> act.ActionOutcome:
        """Switch one load's relay on or off on site. Critical loads are never switched off
        by agents. Operators may be asked to confirm: then call again with the
        confirmation_token from the answer."""
        caller = who()
        req = parse(
            RelayReq, load=load, on=on, reason=reason, confirmation_token=confirmation_token
        )
        confirmed = _asked_yes(
            answer, rt, caller, "toggle_relay", req.model_dump(exclude={"confirmation_token"})
        )
        return await run_tool(lambda: act.toggle_relay(rt, caller, req, confirmed=confirmed))

    SetReq = act.SetSetpoint

    @server.tool(title="Set setpoint", annotations=ACT)
    async def set_setpoint(
        asset: Annotated[str, described(SetReq, "asset")],
        power_kw: Annotated[float, described(SetReq, "power_kw")],
        reason: Annotated[str, described(SetReq, "reason")],
        answer: Annotated[ElicitationResult[Confirm], Resolve(confirm_setpoint)],
        confirmation_token: Annotated[str | None, described(SetReq, "confirmation_token")] = None,
    ) -> act.ActionOutcome:
        """Set a battery's power (+ discharge / - charge, kW), a PV inverter's output limit
        (kW), or a peaker's output (kW; 0 stops it). Checked against physical limits, state
        of charge and the import/export limits."""
        caller = who()
        req = parse(
            SetReq,
            asset=asset,
            power_kw=power_kw,
            reason=reason,
            confirmation_token=confirmation_token,
        )
        confirmed = _asked_yes(
            answer, rt, caller, "set_setpoint", req.model_dump(exclude={"confirmation_token"})
        )
        return await run_tool(lambda: act.set_setpoint(rt, caller, req, confirmed=confirmed))

    AnomReq = review.AnomalyRequest

    @server.tool(title="Anomalies", annotations=READ)
    async def anomalies(
        hours: Annotated[float, described(AnomReq, "hours")] = 24,
        asset: Annotated[str | None, described(AnomReq, "asset")] = None,
        kind: Annotated[str | None, described(AnomReq, "kind")] = None,
    ) -> review.AnomalyReport:
        """Events of the last hours (anomalies, devices offline, sequence gaps, faults) and
        whether each asset's data is trustworthy enough for automated action now."""
        caller = who()
        return await run_tool(
            lambda: review.anomalies(rt, caller, AnomReq(hours=hours, asset=asset, kind=kind))
        )

    @server.tool(title="Policy", annotations=READ)
    async def policy(
        toggle_relay: Annotated[
            act.ToggleRelay | None, described(review.PolicyRequest, "toggle_relay")
        ] = None,
        set_setpoint: Annotated[
            act.SetSetpoint | None, described(review.PolicyRequest, "set_setpoint")
        ] = None,
    ) -> review.PolicyReport:
        """What you may do and why: your role, the site's limits, and optionally a dry run of
        a relay switch or setpoint against every rule (nothing is done)."""
        caller = who()
        return await run_tool(
            lambda: review.policy(
                rt,
                caller,
                review.PolicyRequest(toggle_relay=toggle_relay, set_setpoint=set_setpoint),
            )
        )

    AuditReq = review.AuditRequest

    @server.tool(title="Audit log", annotations=READ)
    async def audit_log(
        limit: Annotated[int, described(AuditReq, "limit")] = 20,
        principal: Annotated[str | None, described(AuditReq, "principal")] = None,
        outcome: Annotated[str | None, described(AuditReq, "outcome")] = None,
    ) -> review.AuditPage:
        """The most recent audit records: who asked for what, every rule's verdict, the
        commands sent, the acks and the state after; plus whether the hash chain verifies."""
        caller = who()
        return await run_tool(
            lambda: review.audit_log(
                rt, caller, AuditReq(limit=limit, principal=principal, outcome=outcome)
            )
        )

    LeaseReq = act.LeaseRequest

    @server.tool(title="Lease an asset", annotations=GUARD)
    async def lease(
        asset: Annotated[str, described(LeaseReq, "asset")],
        op: Annotated[str, Field(description="acquire or release")] = "acquire",
        priority: Annotated[int, described(LeaseReq, "priority")] = 50,
        duration_s: Annotated[float, described(LeaseReq, "duration_s")] = 900,
        purpose: Annotated[str, Field(description="What you hold it for")] = "",
    ) -> act.LeaseResult:
        """Hold an asset so other agents cannot act on it for a while (higher priority
        preempts lower), or release it."""
        caller = who()
        return await run_tool(
            lambda: act.lease(
                rt,
                caller,
                LeaseReq(
                    asset=asset, op=op, priority=priority, duration_s=duration_s, purpose=purpose
                ),
            )
        )

    HaltReq = act.HaltRequest

    @server.tool(title="Halt the site", annotations=ACT)
    async def halt(
        reason: Annotated[str, described(HaltReq, "reason")],
        safe_state: Annotated[bool, described(HaltReq, "safe_state")] = False,
    ) -> act.HaltResult:
        """Kill switch (admin): stop all automated actuation at once, optionally commanding
        every device to its safe state. Stays halted until resume."""
        caller = who()
        return await run_tool(
            lambda: act.halt(rt, caller, HaltReq(reason=reason, safe_state=safe_state))
        )

    @server.tool(title="Resume the site", annotations=GUARD)
    async def resume(
        reason: Annotated[str, Field(description="Why it is safe again")],
    ) -> act.HaltResult:
        """Lift a halt (admin), so agents may act again."""
        caller = who()
        return await run_tool(lambda: act.resume(rt, caller, reason))

    register_resources(server, st)
    register_prompts(server)
    return server


def _asked_yes(
    answer: ElicitationResult[Confirm],
    rt: Runtime,
    caller: Caller,
    name: str,
    arguments: dict[str, Any],
) -> bool:
    """True when the user accepted through elicitation; False when nobody was asked;
    a declined or cancelled question (or a "no") is a refusal, audited like any other."""
    if isinstance(answer, AcceptedElicitation):
        if answer.data is NOT_ASKED:
            return False
        if answer.data.confirm:
            return True
    refusal = PolicyRefusal("confirmation", f"the user declined to {name.replace('_', ' ')}")
    raise tool_error(rt.actuator.refuse(caller, name, arguments, refusal))


__all__ = ["ToolError", "build_server"]
