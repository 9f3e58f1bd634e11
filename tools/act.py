"""Tools that change something on site. Every one goes through the Actuator."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from grid.errors import PolicyRefusal
from guardrails.actuator import ActuationResult
from guardrails.policy import Action
from guardrails.principals import Caller
from tools import fields
from tools.context import Runtime

Reason = fields.Text("Why, in a sentence: kept in the audit log", max_length=500, min_length=3)
ConfirmationToken = Annotated[
    str | None,
    Field(
        strict=True,
        max_length=64,
        description="Token from an earlier needs_confirmation answer, to confirm exactly "
        "that action",
    ),
]


class ActionOutcome(BaseModel):
    status: Literal["executed", "failed", "needs_confirmation"]
    summary: str = Field(description="What was done, or what would be done")
    request_id: str
    audit_seq: int = Field(description="Audit record number (see audit_log)")
    commands: list[dict[str, Any]] = Field(description="Each command sent and its ack result")
    confirmation_token: str | None = Field(
        None, description="Send this back as confirmation_token to go ahead"
    )
    confirmation_expires_at: datetime | None = Field(
        None, description="Wall-clock time (UTC) the token expires, whatever the site clock says"
    )
    rules_checked: list[str] = Field(description="Every guardrail rule evaluated")


def outcome_of(
    rt: Runtime, caller: Caller, name: str, arguments: dict[str, Any], result: ActuationResult
) -> ActionOutcome:
    token = expires = None
    if result.outcome == "awaiting_confirmation":
        token, expires = rt.confirmations.issue(caller.name, name, arguments)
    status = {"awaiting_confirmation": "needs_confirmation", "executed": "executed"}.get(
        result.outcome, "failed"
    )
    summary = result.preview
    if status == "needs_confirmation":
        summary = (
            f"would {result.preview}; nothing was done. Call {name} again with the same "
            f"arguments and confirmation_token to go ahead"
        )
    return ActionOutcome(
        status=status,
        summary=summary,
        request_id=result.request_id,
        audit_seq=result.audit_seq,
        commands=[c.model_dump() for c in result.commands],
        confirmation_token=token,
        confirmation_expires_at=expires,
        rules_checked=[
            f"{r.rule}: {'ok' if r.allowed else 'DENY'} ({r.detail})"
            for r in result.decision.results
        ],
    )


def _act(
    rt: Runtime,
    caller: Caller,
    name: str,
    arguments: dict[str, Any],
    actions: list[Action],
    token: str | None,
    confirmed: bool,
) -> ActionOutcome:
    if token is not None:
        try:
            rt.confirmations.redeem(token, caller.name, name, arguments)
        except PolicyRefusal as refusal:
            raise rt.actuator.refuse(caller, name, arguments, refusal) from None
        confirmed = True
    result = rt.actuator.request(caller, name, actions, arguments, confirmed=confirmed)
    return outcome_of(rt, caller, name, arguments, result)


class ToggleRelay(BaseModel):
    load: fields.Id("Load id (see list_assets), e.g. ev-chargers")
    on: Annotated[fields.Flag, Field(description="true = relay closed (load powered)")]
    reason: Reason
    confirmation_token: ConfirmationToken = None

    @field_validator("load")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str | None:
        return fields.check_id(value, info, "load", fields.loads)


def relay_actions(req: ToggleRelay) -> list[Action]:
    return [Action(kind="set_relay", asset=req.load, on=req.on)]


def toggle_relay(
    rt: Runtime, caller: Caller, req: ToggleRelay, confirmed: bool = False
) -> ActionOutcome:
    arguments = req.model_dump(exclude={"confirmation_token"})
    return _act(
        rt, caller, "toggle_relay", arguments, relay_actions(req), req.confirmation_token, confirmed
    )


class SetSetpoint(BaseModel):
    asset: fields.Id("A battery, PV or peaker id (see list_assets)")
    power_kw: fields.Number(
        "Battery: + discharge / - charge, kW. PV: output limit, kW (curtailment). "
        "Peaker: output kW, 0 stops it",
        ge=-100_000,
        le=100_000,
    )
    reason: Reason
    confirmation_token: ConfirmationToken = None

    @field_validator("asset")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str | None:
        return fields.check_id(value, info, "battery, PV or peaker", fields.setpoint_assets)


def setpoint_actions(rt: Runtime, req: SetSetpoint) -> list[Action]:
    a = rt.site.assets
    if req.asset in {b.id for b in a.batteries}:
        return [Action(kind="set_battery_power", asset=req.asset, power_kw=req.power_kw)]
    if req.asset in {p.id for p in a.pv}:
        return [Action(kind="set_pv_limit", asset=req.asset, power_kw=req.power_kw)]
    if req.asset in {g.id for g in a.peakers}:
        if req.power_kw == 0:
            return [Action(kind="stop_peaker", asset=req.asset)]
        running = rt.snapshot().peaker_running.get(req.asset)
        start = [] if running else [Action(kind="start_peaker", asset=req.asset)]
        return [*start, Action(kind="set_peaker_power", asset=req.asset, power_kw=req.power_kw)]
    known = fields.setpoint_assets(rt.site)
    raise PolicyRefusal(
        "asset_known", f"{req.asset[:64]!r} takes no setpoint; one of: {', '.join(known)}"
    )


def set_setpoint(
    rt: Runtime, caller: Caller, req: SetSetpoint, confirmed: bool = False
) -> ActionOutcome:
    arguments = req.model_dump(exclude={"confirmation_token"})
    try:
        actions = setpoint_actions(rt, req)
    except PolicyRefusal as refusal:
        raise rt.actuator.refuse(caller, "set_setpoint", arguments, refusal) from None
    return _act(rt, caller, "set_setpoint", arguments, actions, req.confirmation_token, confirmed)


class LeaseRequest(BaseModel):
    asset: fields.Id("Asset id to hold (see list_assets)")
    op: Annotated[
        Literal["acquire", "release"],
        Field(description="acquire, or release (operators and admins also break lower leases)"),
    ] = "acquire"
    priority: fields.Integer(
        "Higher preempts lower; capped by your role (agent 50, daemon 80, operator 90, admin "
        "100, unless the site file says otherwise)",
        ge=0,
        le=100,
    ) = 50
    duration_s: fields.Number(
        "Lease length, s; capped by your role (agent 1 h, daemon 4 h, operator 12 h, admin 24 h)",
        ge=0,
        gt=0,
        le=86_400,
    ) = 900
    purpose: fields.Text("What you hold it for", max_length=200) = ""

    @field_validator("asset")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str | None:
        return fields.check_id(value, info, "asset", fields.assets)


class LeaseResult(BaseModel):
    asset: str
    held: bool
    holder: str | None
    priority: int | None
    expires_at: datetime | None
    preempted: str | None = Field(None, description="Who lost the lease to you, if anyone")
    notices: list[str] = Field(description="Messages for you, e.g. your other leases preempted")


def lease(rt: Runtime, caller: Caller, req: LeaseRequest) -> LeaseResult:
    notices = rt.actuator.leases.notices(caller.name)
    if req.op == "release":
        ended = rt.actuator.release_lease(caller, req.asset)
        if ended is None:
            notices.append("no lease of yours (or one you may break) was held on it")
        elif ended.holder != caller.name:
            notices.append(f"you broke the lease of {ended.holder} (priority {ended.priority})")
        return LeaseResult(
            asset=req.asset,
            held=False,
            holder=None,
            priority=None,
            expires_at=None,
            notices=notices,
        )
    grant = rt.actuator.acquire_lease(caller, req.asset, req.priority, req.duration_s, req.purpose)
    return LeaseResult(
        asset=req.asset,
        held=True,
        holder=grant.lease.holder,
        priority=grant.lease.priority,
        expires_at=grant.lease.expires_at,
        preempted=grant.preempted.holder if grant.preempted else None,
        notices=notices,
    )


class HaltRequest(BaseModel):
    reason: Reason
    safe_state: Annotated[
        fields.Flag, Field(description="Also command every device to its configured safe state")
    ] = False


class ResumeRequest(BaseModel):
    reason: Reason


class HaltResult(BaseModel):
    halted: bool
    by: str | None
    reason: str
    since: datetime | None


def halt(rt: Runtime, caller: Caller, req: HaltRequest) -> HaltResult:
    state = rt.actuator.halt(caller, req.reason, req.safe_state)
    return HaltResult(**state.model_dump())


def resume(rt: Runtime, caller: Caller, req: ResumeRequest) -> HaltResult:
    state = rt.actuator.resume(caller, req.reason)
    return HaltResult(**state.model_dump())
