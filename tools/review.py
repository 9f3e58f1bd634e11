"""Tools for looking back and inward: anomalies, the policy, the audit log, a ping."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from forecasting.anomaly import assess
from grid.telemetry import Event
from guardrails.audit import AuditRecord, Outcome
from guardrails.principals import MIN_ROLE, Caller, Capability
from tools import fields
from tools.act import SetSetpoint, ToggleRelay, relay_actions, setpoint_actions
from tools.context import Runtime


class AnomalyRequest(BaseModel):
    hours: fields.Number("How far back, hours", ge=0, gt=0, le=24 * 31) = 24
    asset: fields.Id("Only this asset", optional=True) = None
    kind: Annotated[
        str | None,
        Field(
            strict=True,
            max_length=64,
            pattern=fields.IDENT_PATTERN,
            description="Only this event kind, e.g. anomaly, offline, seq_gap",
        ),
    ] = None

    @field_validator("asset")
    @classmethod
    def _known(cls, value: str | None, info: ValidationInfo) -> str | None:
        return fields.check_id(value, info, "asset", fields.assets)


class AssetTrust(BaseModel):
    asset: str
    trustworthy: bool
    score: float
    reason: str


class AnomalyReport(BaseModel):
    events: list[Event]
    trust_now: list[AssetTrust] = Field(
        description="Whether each asset's data may drive automated actions right now"
    )


def anomalies(rt: Runtime, caller: Caller, req: AnomalyRequest) -> AnomalyReport:
    rt.actuator.require(caller, Capability.READ, "anomalies", req.model_dump())
    now = rt.clock.now()
    events = rt.store.query_events(
        rt.site.site.name,
        now - timedelta(hours=req.hours),
        now + timedelta(seconds=1),
        kind=req.kind,
        asset=req.asset,
    )
    a = rt.site.assets
    assets = [req.asset] if req.asset else [x.id for x in (*a.batteries, *a.pv, *a.loads)]
    trust = []
    for asset in assets:
        verdict = assess(rt.site, rt.store, asset, now, registry_dir=rt.models_dir)
        trust.append(AssetTrust(asset=asset, **verdict.model_dump()))
    return AnomalyReport(events=events[-500:], trust_now=trust)


class PolicyRequest(BaseModel):
    toggle_relay: Annotated[
        ToggleRelay | None,
        Field(description="A relay switch to dry-run against every rule (nothing is done)"),
    ] = None
    set_setpoint: Annotated[
        SetSetpoint | None,
        Field(description="A setpoint to dry-run against every rule (nothing is done)"),
    ] = None


class RuleCheck(BaseModel):
    rule: str
    allowed: bool
    detail: str
    asset: str | None = None


class PolicyReport(BaseModel):
    principal: str
    role: str
    may: list[str] = Field(description="What this role may do")
    may_not: list[str]
    limits: dict[str, Any] = Field(description="The site's policy limits, units in the names")
    halted: bool
    dry_run: list[RuleCheck] | None = Field(None, description="Rules for the proposed action")
    dry_run_allowed: bool | None = None
    dry_run_needs_confirmation: bool | None = None


_CAN = {
    Capability.READ: "read state, history, forecasts, anomalies and the audit log",
    Capability.PLAN: "optimize (make plans; changes nothing)",
    Capability.ACT: "dispatch plans, set setpoints, switch non-critical relays, hold leases",
    Capability.OPERATE: "switch any relay, critical loads too (with confirmation)",
    Capability.ADMIN: "halt and resume the site",
}


def policy(rt: Runtime, caller: Caller, req: PolicyRequest) -> PolicyReport:
    rt.actuator.require(caller, Capability.READ, "policy", {})
    may = [f"{text} [{cap.value}]" for cap, text in _CAN.items() if caller.can(cap)]
    may_not = [
        f"{text} [needs {MIN_ROLE[cap]}]" for cap, text in _CAN.items() if not caller.can(cap)
    ]
    report = PolicyReport(
        principal=caller.name,
        role=caller.role,
        may=may,
        may_not=may_not,
        limits=rt.site.policy.model_dump(mode="json"),
        halted=rt.actuator.killswitch.state.halted,
    )
    actions = []
    if req.toggle_relay is not None:
        actions += relay_actions(req.toggle_relay)
    if req.set_setpoint is not None:
        actions += setpoint_actions(rt, req.set_setpoint)
    if actions:
        decision = rt.actuator.evaluate(caller, actions)
        report.dry_run = [RuleCheck(**r.model_dump()) for r in decision.results]
        report.dry_run_allowed = decision.allowed
        report.dry_run_needs_confirmation = decision.needs_confirmation
    return report


class AuditRequest(BaseModel):
    limit: fields.Integer("Most recent N records", ge=1, le=500) = 20
    principal: fields.Id("Only this principal", optional=True) = None
    outcome: Annotated[Outcome | None, Field(description="Only this outcome")] = None
    since: Annotated[datetime | None, Field(description="Only records at or after (ISO)")] = None


class AuditPage(BaseModel):
    records: list[AuditRecord]
    chain_ok: bool = Field(description="Whether the hash chain verifies end to end")
    total_records: int


def audit_log(rt: Runtime, caller: Caller, req: AuditRequest) -> AuditPage:
    rt.actuator.require(caller, Capability.READ, "audit_log", req.model_dump(mode="json"))
    audit = rt.actuator.audit
    records = audit.query(
        principal=req.principal, since=req.since, outcome=req.outcome, limit=req.limit
    )
    return AuditPage(records=records, chain_ok=audit.verify().ok, total_records=audit.count())


class Pong(BaseModel):
    time: datetime
    site: str
    principal: str


def ping(rt: Runtime, caller: Caller) -> Pong:
    """The cheapest tool there is: a liveness check and the latency floor in benchmarks."""
    return Pong(time=rt.clock.now(), site=rt.site.site.name, principal=caller.name)
