"""The Actuator: the one path from a request to a command on a device.

For every request: authorize -> evaluate every policy rule (leases and the kill
switch among them) -> ask for confirmation where the policy says -> record the
request as pending -> send each command with an idempotent id -> wait for the ack
-> read the state after -> write exactly one audit record. Requests are handled
one at a time, so two callers can never both pass a dwell check for one relay.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from pydantic import BaseModel

from edge.protocol import Ack, Command
from grid.clock import Clock
from grid.config import SiteConfig
from grid.errors import DeviceUnavailable, PolicyRefusal
from guardrails.audit import AuditEntry, AuditLog, Outcome
from guardrails.killswitch import HaltState, KillSwitch
from guardrails.leases import Lease, LeaseGrant, Leases
from guardrails.pending import PendingBook, PendingRequest
from guardrails.policy import (
    Action,
    Decision,
    History,
    SiteSnapshot,
    TrustLookup,
    asset_device,
    evaluate,
)
from guardrails.principals import MIN_ROLE, Caller, Capability

log = logging.getLogger(__name__)


class CommandSender(Protocol):
    """The gateway, as far as the Actuator needs it."""

    def send_command(self, command: Command, timeout_s: float) -> Ack: ...


class CommandResult(BaseModel):
    command_id: str
    device: str
    action: str
    params: dict[str, Any]
    result: str  # ok, rejected, expired, error, timeout
    detail: str = ""


class ActuationResult(BaseModel):
    request_id: str
    outcome: Outcome
    audit_seq: int
    decision: Decision
    commands: list[CommandResult] = []
    state_after: dict[str, Any] = {}
    preview: str


def to_command(
    site: SiteConfig, action: Action, command_id: str, caller: str, clock: Clock, ttl_s: float
) -> Command:
    device = asset_device(site, action)
    assert device is not None  # policy refused unknown assets before this point
    if action.kind == "set_relay":
        params: dict[str, Any] = {"channel": site.load(action.asset).channel, "on": action.on}
        verb = "set_relay"
    elif action.kind == "set_pv_limit":
        params, verb = {"limit_kw": action.power_kw}, "set_curtailment"
    elif action.kind in ("set_battery_power", "set_peaker_power"):
        params, verb = {"power_kw": action.power_kw}, "set_power"
        if action.import_cap_kw is not None:
            params["import_cap_kw"] = action.import_cap_kw
        if action.reserve_soc_fraction is not None:
            params["reserve_soc_fraction"] = action.reserve_soc_fraction
        if action.follow_import_kw is not None:
            params["follow_import_kw"] = action.follow_import_kw
    else:
        params, verb = {}, "start" if action.kind == "start_peaker" else "stop"
    now = clock.now()
    return Command(
        id=command_id,
        device=device,
        action=verb,
        params=params,
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        principal=caller,
    )


def _switches(action: Action) -> bool:
    return action.kind in ("set_relay", "start_peaker", "stop_peaker")


class Actuator:
    def __init__(
        self,
        site: SiteConfig,
        sender: CommandSender,
        snapshot: Callable[[], SiteSnapshot],
        clock: Clock,
        audit: AuditLog,
        pending: PendingBook,
        leases: Leases,
        killswitch: KillSwitch,
        trust: TrustLookup | None = None,
    ) -> None:
        self.site = site
        self._sender = sender
        self._snapshot = snapshot
        self._clock = clock
        self.audit = audit
        self._pending = pending
        self.leases = leases
        self.killswitch = killswitch
        self._trust = trust
        self._lock = threading.RLock()
        self._history = History()
        self._seed_history()

    # -- history -------------------------------------------------------------

    def _seed_history(self) -> None:
        """Dwell and rate rules must survive a restart: rebuild the last hour from the log."""
        since = self._clock.now() - timedelta(hours=1)
        for record in self.audit.query(since=since):
            if record.outcome in ("executed", "failed", "reconciled", "refused"):
                self._note(record.principal, record.time, record.arguments.get("applied", []))

    def _note(self, principal: str, when, applied: list[dict]) -> None:
        self._history.actions.setdefault(principal, []).append(when)
        for raw in applied:
            action = Action.model_validate(raw)
            if _switches(action):
                self._history.switches.setdefault(action.asset, []).append(when)
        cutoff = when - timedelta(hours=1)
        for times in (*self._history.switches.values(), *self._history.actions.values()):
            times[:] = [t for t in times if t > cutoff]

    # -- the one path --------------------------------------------------------

    def evaluate(self, caller: Caller, actions: list[Action], direct: bool = True) -> Decision:
        """A dry run: every rule, nothing sent, nothing recorded."""
        with self._lock:
            return evaluate(
                self.site,
                caller,
                actions,
                self._snapshot(),
                self._history,
                self.killswitch.state,
                self.leases.check,
                self._trust,
                direct,
            )

    def request(
        self,
        caller: Caller,
        name: str,
        actions: list[Action],
        arguments: dict[str, Any] | None = None,
        *,
        confirmed: bool = False,
        direct: bool = True,
        request_id: str | None = None,
    ) -> ActuationResult:
        """Act, or refuse with `PolicyRefusal` (after auditing the refusal).

        Returns outcome `awaiting_confirmation` without acting when the policy wants a
        confirmation that was not given. A `request_id` already settled returns the
        earlier result instead of acting again.
        """
        request_id = request_id or uuid.uuid4().hex[:16]
        with self._lock:
            earlier = self._pending.settled_seq(request_id)
            if earlier is not None:
                return self._replay(request_id, earlier)
            snapshot = self._snapshot()
            decision = evaluate(
                self.site,
                caller,
                actions,
                snapshot,
                self._history,
                self.killswitch.state,
                self.leases.check,
                self._trust,
                direct,
            )
            preview = "; ".join(a.describe() for a in actions) or "nothing to do"
            entry = AuditEntry(
                time=snapshot.now,
                principal=caller.name,
                role=caller.role,
                action=name,
                arguments={
                    **(arguments or {}),
                    "request_id": request_id,
                    "actions": [a.model_dump(mode="json") for a in actions],
                },
                decision=decision.model_dump(mode="json"),
                state_before=snapshot.model_dump(mode="json"),
                outcome="refused",
            )
            refusal = decision.refusal()
            if refusal is not None:
                record = self.audit.append(entry.model_copy(update={"detail": str(refusal)}))
                self._note(caller.name, snapshot.now, [])
                self._pending.settle(request_id, record.seq)
                raise refusal
            if decision.needs_confirmation and not confirmed:
                record = self.audit.append(
                    entry.model_copy(
                        update={"outcome": "awaiting_confirmation", "detail": f"would {preview}"}
                    )
                )
                return ActuationResult(
                    request_id=request_id,
                    outcome="awaiting_confirmation",
                    audit_seq=record.seq,
                    decision=decision,
                    preview=preview,
                )
            return self._send(caller, request_id, entry, actions, decision, preview)

    def _send(
        self,
        caller: Caller,
        request_id: str,
        entry: AuditEntry,
        actions: list[Action],
        decision: Decision,
        preview: str,
    ) -> ActuationResult:
        ttl = self.site.policy.ack_timeout_s * 2
        commands = [
            to_command(self.site, a, f"{request_id}-{i}", caller.name, self._clock, ttl)
            for i, a in enumerate(actions)
        ]
        self._pending.add(
            PendingRequest(
                request_id=request_id,
                entry=entry.model_dump(mode="json"),
                commands=[c.model_dump(mode="json") for c in commands],
            )
        )
        results, applied = [], []
        for action, command in zip(actions, commands, strict=True):
            results.append(self._send_one(command))
            if results[-1].result == "ok":
                applied.append(action.model_dump(mode="json"))
        after = self._snapshot()
        ok = all(r.result == "ok" for r in results)
        failed = [
            f"{r.device} {r.action}: {r.result} {r.detail}".strip()
            for r in results
            if r.result != "ok"
        ]
        record = self.audit.append(
            entry.model_copy(
                update={
                    "arguments": {**entry.arguments, "applied": applied},
                    "command_ids": [c.id for c in commands],
                    "acks": [r.model_dump(mode="json") for r in results],
                    "state_after": after.model_dump(mode="json"),
                    "outcome": "executed" if ok else "failed",
                    "detail": preview if ok else "; ".join(failed),
                }
            )
        )
        self._note(caller.name, entry.time, applied)
        self._pending.settle(request_id, record.seq)
        return ActuationResult(
            request_id=request_id,
            outcome=record.outcome,
            audit_seq=record.seq,
            decision=decision,
            commands=results,
            state_after=record.state_after,
            preview=preview,
        )

    def _send_one(self, command: Command) -> CommandResult:
        base = {
            "command_id": command.id,
            "device": command.device,
            "action": command.action,
            "params": command.params,
        }
        try:
            ack = self._sender.send_command(command, self.site.policy.ack_timeout_s)
        except DeviceUnavailable as exc:
            return CommandResult(**base, result="timeout", detail=str(exc))
        return CommandResult(**base, result=ack.result, detail=ack.detail)

    def _replay(self, request_id: str, seq: int) -> ActuationResult:
        record = self.audit.get(seq)
        assert record is not None
        if record.outcome == "refused":
            rule = next((r for r in record.decision["results"] if not r["allowed"]), None)
            raise PolicyRefusal(rule["rule"] if rule else "policy", record.detail)
        return ActuationResult(
            request_id=request_id,
            outcome=record.outcome,
            audit_seq=seq,
            decision=Decision.model_validate(record.decision),
            commands=[CommandResult.model_validate(a) for a in record.acks],
            state_after=record.state_after,
            preview=record.detail,
        )

    # -- after a crash -------------------------------------------------------

    def reconcile(self) -> list[int]:
        """Settle requests left pending by a crash, from device state; never re-send."""
        seqs = []
        with self._lock:
            for pending in self._pending.all():
                snapshot = self._snapshot()
                entry = AuditEntry.model_validate(pending.entry)
                actions = [Action.model_validate(a) for a in entry.arguments.get("actions", [])]
                applied = [
                    a.model_dump(mode="json") for a in actions if _observed(a, snapshot) is True
                ]
                words = [f"{a.describe()}: {_word(_observed(a, snapshot))}" for a in actions]
                record = self.audit.append(
                    entry.model_copy(
                        update={
                            "arguments": {**entry.arguments, "applied": applied},
                            "command_ids": [c["id"] for c in pending.commands],
                            "state_after": snapshot.model_dump(mode="json"),
                            "outcome": "reconciled",
                            "detail": "found pending after a restart; " + "; ".join(words),
                        }
                    )
                )
                self._note(entry.principal, entry.time, applied)
                self._pending.settle(pending.request_id, record.seq)
                seqs.append(record.seq)
        return seqs

    # -- guardrail state changes ----------------------------------------------

    def _entry(
        self,
        caller: Caller,
        name: str,
        arguments: dict[str, Any],
        outcome: Outcome,
        detail: str,
        **extra: Any,
    ) -> AuditEntry:
        return AuditEntry(
            time=self._clock.now(),
            principal=caller.name,
            role=caller.role,
            action=name,
            arguments=arguments,
            outcome=outcome,
            detail=detail,
            **extra,
        )

    def _record(
        self,
        caller: Caller,
        name: str,
        arguments: dict[str, Any],
        detail: str,
        command_ids: list[str] | None = None,
    ) -> int:
        entry = self._entry(
            caller, name, arguments, "recorded", detail, command_ids=command_ids or []
        )
        return self.audit.append(entry).seq

    def refuse(
        self,
        caller: Caller,
        name: str,
        arguments: dict[str, Any],
        refusal: PolicyRefusal,
        field: str | None = None,
    ) -> PolicyRefusal:
        """Audit a refusal decided outside the policy (input, role, plan checks, leases);
        `field` names the argument that was refused, when one was."""
        rule: dict[str, Any] = {"rule": refusal.rule, "allowed": False, "detail": refusal.detail}
        if field is not None:
            rule["field"] = field
        self.audit.append(
            self._entry(
                caller,
                name,
                arguments,
                "refused",
                str(refusal),
                decision={"allowed": False, "results": [rule]},
            )
        )
        return refusal

    def require(
        self, caller: Caller, capability: Capability, name: str, arguments: dict[str, Any]
    ) -> None:
        """Refuse (and audit) a caller whose role lacks the capability."""
        if not caller.can(capability):
            raise self.refuse(
                caller,
                name,
                arguments,
                PolicyRefusal(
                    "role",
                    f"{caller.name} is a {caller.role}; {name} needs the {capability.value} "
                    f"capability ({MIN_ROLE[capability]} or above)",
                ),
            )

    def halt(self, caller: Caller, reason: str, safe_state: bool = False) -> HaltState:
        """Stop all automated actuation at once; optionally command the safe state."""
        arguments = {"reason": reason, "safe_state": safe_state}
        self.require(caller, Capability.ADMIN, "halt", arguments)
        with self._lock:
            state = HaltState(halted=True, by=caller.name, reason=reason, since=self._clock.now())
            self.killswitch.set(state)
            ids = []
            if safe_state:
                for command in self._safe_state_commands(caller):
                    result = self._send_one(command)
                    ids.append(command.id)
                    if result.result != "ok":
                        log.error("safe-state command %s failed: %s", command.id, result.detail)
            self._record(caller, "halt", arguments, f"halted: {reason}", ids)
            return state

    def resume(self, caller: Caller, reason: str) -> HaltState:
        self.require(caller, Capability.ADMIN, "resume", {"reason": reason})
        with self._lock:
            self.killswitch.set(HaltState())
            self._record(caller, "resume", {"reason": reason}, f"resumed: {reason}")
            return self.killswitch.state

    def _safe_state_commands(self, caller: Caller) -> list[Command]:
        stamp = uuid.uuid4().hex[:12]
        actions: list[Action] = []
        for device in self.site.devices:
            if device.kind == "relay_board" and device.safe_state is not None:
                for load in self.site.assets.loads:
                    if load.board == device.id:
                        actions.append(
                            Action(
                                kind="set_relay",
                                asset=load.id,
                                on=device.safe_state[load.channel - 1],
                            )
                        )
        actions += [
            Action(kind="set_battery_power", asset=b.id, power_kw=0.0)
            for b in self.site.assets.batteries
        ]
        actions += [Action(kind="stop_peaker", asset=g.id) for g in self.site.assets.peakers]
        ttl = self.site.policy.ack_timeout_s * 2
        return [
            to_command(self.site, a, f"halt-{stamp}-{i}", caller.name, self._clock, ttl)
            for i, a in enumerate(actions)
        ]

    def acquire_lease(
        self, caller: Caller, asset: str, priority: int, duration_s: float, purpose: str = ""
    ) -> LeaseGrant:
        arguments = {
            "asset": asset,
            "priority": priority,
            "duration_s": duration_s,
            "purpose": purpose,
        }
        self.require(caller, Capability.ACT, "lease_acquire", arguments)
        refusal = None
        if asset not in self.site.asset_ids():
            refusal = PolicyRefusal(
                "asset_known",
                f"no asset {asset[:64]!r}; one of: {', '.join(sorted(self.site.asset_ids()))}",
            )
        elif priority > caller.lease_priority_cap:
            refusal = PolicyRefusal(
                "lease_priority",
                f"{caller.name} ({caller.role}) may lease at priority up to "
                f"{caller.lease_priority_cap}; asked {priority}",
            )
        elif duration_s > caller.lease_s_cap:
            refusal = PolicyRefusal(
                "lease_duration",
                f"{caller.name} ({caller.role}) may hold a lease up to {caller.lease_s_cap:g} s; "
                f"asked {duration_s:g} s",
            )
        if refusal is not None:
            raise self.refuse(caller, "lease_acquire", arguments, refusal)
        try:
            grant = self.leases.acquire(asset, caller.name, priority, duration_s, purpose)
        except PolicyRefusal as refusal:
            raise self.refuse(caller, "lease_acquire", arguments, refusal) from None
        detail = f"leased {asset} at priority {priority} for {duration_s:g} s"
        if grant.preempted:
            detail += f", preempting {grant.preempted.holder} (priority {grant.preempted.priority})"
        self._record(caller, "lease_acquire", arguments, detail)
        return grant

    def release_lease(self, caller: Caller, asset: str) -> Lease | None:
        """Release the caller's own lease; an operator or admin also breaks another
        holder's lease of a priority below their own ceiling (audited with its holder)."""
        arguments = {"asset": asset}
        self.require(caller, Capability.ACT, "lease_release", arguments)
        breaks = caller.lease_priority_cap if caller.can(Capability.OPERATE) else None
        ended = self.leases.release(asset, caller.name, below_priority=breaks)
        if ended is None:
            detail = "held no lease on it"
        elif ended.holder == caller.name:
            detail = "released"
        else:
            detail = f"broke the lease of {ended.holder} (priority {ended.priority})"
        self._record(caller, "lease_release", arguments, detail)
        return ended


def _observed(action: Action, snapshot: SiteSnapshot) -> bool | None:
    """Whether the device state shows the action took effect (None: cannot tell)."""
    if action.kind == "set_relay":
        current = snapshot.relay_on.get(action.asset)
        return None if current is None else current == action.on
    if action.kind in ("start_peaker", "stop_peaker"):
        running = snapshot.peaker_running.get(action.asset)
        return None if running is None else running == (action.kind == "start_peaker")
    if action.kind == "set_battery_power":
        power = snapshot.battery_kw.get(action.asset)
        if power is None:
            return None
        wanted = action.power_kw or 0.0
        if action.follow_import_kw is not None:  # following the import may give some up
            wanted = min(wanted, 0.0)
        if action.import_cap_kw is not None:  # peak shaving may only add discharge
            return power > wanted - 0.5
        return abs(power - wanted) < 0.5
    return None


def _word(observed: bool | None) -> str:
    return {True: "took effect", False: "did not take effect", None: "cannot tell"}[observed]
