"""The loop every daemon shares: observe through tools, decide, act through tools only.

A daemon is a small object with a role (its principal's name), a lease priority,
`observe` (reads through the session), `decide` (a pure function of what it saw and
what it remembers) and `acted` (what to remember once a decision's calls all
succeeded). The loop logs every decision with its reason and each tool's answer;
with `dry_run` it decides and logs but never acts (no action, no lease).

A broken connection ends the cycle: the next one reconnects and decides again from
fresh state, so a call that may have reached the server is never blindly repeated.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
from pydantic import BaseModel

from agents import calls
from agents.calls import Call
from agents.client import Disconnected, Session, ToolResult

log = logging.getLogger("agents")

# Tools that only read: run even in a dry run.
READ_TOOLS = {"grid_state", "list_assets", "forecast", "optimize", "grid_history", "policy"}


# Refusals that say nothing about the daemon's right to act: a fallback would fare no better.
NO_FALLBACK = {"lease", "kill_switch", "role", "rate_limit"}


class Decision(BaseModel):
    reason: str
    calls: list[Call] = []
    effect: str = ""  # what the daemon remembers once every call succeeded
    # Tried when a call is refused by a guardrail (other than NO_FALLBACK), e.g. the
    # battery's share of a plan whose PV step an interlock refused.
    fallback: Decision | None = None


class CallRecord(BaseModel):
    tool: str
    arguments: dict[str, Any]
    ok: bool | None  # None: not sent (dry run)
    answer: str


class Outcome(BaseModel):
    role: str
    at: datetime
    reason: str
    dry_run: bool
    calls: list[CallRecord]
    done: bool  # every call succeeded (always False in a dry run)


class Daemon(Protocol):
    role: str
    priority: int
    interval_s: float

    async def observe(self, session: Session) -> Any: ...

    def decide(self, seen: Any) -> list[Decision]: ...

    def acted(self, decision: Decision, results: list[ToolResult]) -> None: ...

    def held(self) -> list[str]:
        """Assets this daemon holds a lease on, released when it stops."""
        ...


def _answer(result: ToolResult) -> str:
    if not result.ok:
        return result.text
    data = result.data or {}
    for key in ("summary", "explanation", "status"):
        if key in data:
            return str(data[key])
    if "held" in data:
        return f"held={data['held']} holder={data.get('holder')} priority={data.get('priority')}"
    return "ok"


async def carry_out(daemon: Daemon, session: Session, decision: Decision, dry_run: bool) -> Outcome:
    """Send a decision's calls in order, stopping at the first that fails."""
    records: list[CallRecord] = []
    results: list[ToolResult] = []
    done = not dry_run
    for call in decision.calls:
        if dry_run and call.tool not in READ_TOOLS:
            records.append(
                CallRecord(
                    tool=call.tool, arguments=call.arguments, ok=None, answer="dry run: not sent"
                )
            )
            continue
        result = await session.call(call.tool, call.arguments)
        results.append(result)
        records.append(
            CallRecord(
                tool=call.tool, arguments=call.arguments, ok=result.ok, answer=_answer(result)
            )
        )
        if not result.ok:
            done = False
            break
    if done:
        daemon.acted(decision, results)
    rule = results[-1].refused_rule if results and not done else None
    if decision.fallback is not None and rule is not None and rule not in NO_FALLBACK:
        log_outcome(_outcome(daemon, decision, dry_run, records, done))
        return await carry_out(daemon, session, decision.fallback, dry_run)
    return _outcome(daemon, decision, dry_run, records, done)


def _outcome(
    daemon: Daemon, decision: Decision, dry_run: bool, records: list[CallRecord], done: bool
) -> Outcome:
    return Outcome(
        role=daemon.role,
        at=datetime.now(UTC),
        reason=decision.reason,
        dry_run=dry_run,
        calls=records,
        done=done,
    )


def log_outcome(outcome: Outcome) -> None:
    level = logging.INFO if outcome.done or not outcome.calls else logging.WARNING
    log.log(level, "%s", json.dumps(outcome.model_dump(mode="json"), sort_keys=True))


async def run(
    daemon: Daemon,
    session: Session,
    *,
    dry_run: bool = False,
    once: bool = False,
    journal: deque[Outcome] | None = None,
) -> None:
    """Observe, decide, act, sleep; until cancelled (or after one cycle with `once`).
    Leases still held are released on the way out."""
    try:
        while True:
            try:
                seen = await daemon.observe(session)
                for decision in daemon.decide(seen) if seen is not None else []:
                    outcome = await carry_out(daemon, session, decision, dry_run)
                    log_outcome(outcome)
                    if journal is not None:
                        journal.append(outcome)
            except Disconnected as exc:
                log.warning(
                    "%s: connection lost (%s); deciding again after reconnecting", daemon.role, exc
                )
            if once:
                return
            await anyio.sleep(daemon.interval_s)
    finally:
        if not dry_run:
            await _release(daemon, session)


async def _release(daemon: Daemon, session: Session) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
        for asset in daemon.held():
            try:
                result = await session.call(
                    calls.release(asset).tool, calls.release(asset).arguments
                )
                log.info("%s: released lease on %s (%s)", daemon.role, asset, _answer(result))
            except Disconnected:
                return  # the server is gone; its leases expire on their own


async def observe_state(session: Session) -> ToolResult:
    """`grid_state`, the observation every daemon starts from."""
    call = calls.grid_state()
    return await session.call(call.tool, call.arguments)
