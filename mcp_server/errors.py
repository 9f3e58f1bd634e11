"""One mapping from gridpilot's errors to the text a model reads (`ToolError`).

Errors a caller can act on (a refusal, bad input, a device offline, no plan) say
what happened and what to do next, in a few hundred characters at most. Anything
else is gridpilot's own fault: it is logged with a reference id and the caller is
told it was internal, never that its input was wrong, and never shown a traceback.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from grid.errors import (
    DeviceUnavailable,
    GridpilotError,
    PolicyRefusal,
    SolverFailed,
    StoreError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ERROR_CHARS = 600
NOTHING_CHANGED = "Nothing was changed."

_NEXT = {
    "role": "Ask a principal with the needed role, or use the read-only tools.",
    "critical_load": "Critical loads stay on; shed a sheddable load instead (see list_assets).",
    "relay_dwell": "Wait until the dwell has passed, or act on another asset.",
    "relay_switch_rate": "This relay has switched too often this hour; wait, or use the battery.",
    "rate_limit": "Slow down: wait a minute before the next action.",
    "kill_switch": "The site is halted; an admin must call resume first.",
    "stale_telemetry": "Check grid_state and anomalies; act when fresh data arrives.",
    "anomaly_interlock": "The asset's data is not trustworthy; see anomalies, ask an operator.",
    "device_offline": "The device is offline; see grid_state.devices_online.",
    "lease": "Another agent holds this asset; wait for its lease to end or use another asset.",
    "lease_priority": "Lease at or below your role's maximum priority.",
    "lease_duration": "Ask for a shorter lease.",
    "plan_expired": "Call optimize again and dispatch the new plan_id.",
    "plan_unknown": "Call optimize first and dispatch the plan_id it returns.",
    "plan_changed": "Call optimize again.",
    "plan_state_drift": "The site moved away from the plan; call optimize again.",
    "confirmation": "Call again without confirmation_token to get a fresh preview.",
    "declined": "The person declined: do not call again unless they ask for it.",
    "invalid_input": "Fix the named argument and call again.",
    "unknown_tool": "Call one of the tools listed.",
    "read_only": "Only the read tools are offered here; ask an operator to act.",
}


def clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: Any, limit: int = 40) -> str:
    """A value as a caller may see it again: short, one line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} chars)"


def clip_arguments(arguments: dict[str, Any], limit: int = 200) -> dict[str, Any]:
    """Arguments as the audit log keeps them: strings cut, NaN spelled out, tokens never."""

    def one(value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return value if len(value) <= limit else f"{value[:limit]}… ({len(value)} chars)"
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        if isinstance(value, dict) and depth < 3:
            items = list(value.items())[:20]
            return {str(k)[:64]: one(v, depth + 1) for k, v in items}
        if isinstance(value, list | tuple) and depth < 3:
            return [one(v, depth + 1) for v in list(value)[:20]]
        if value is None or isinstance(value, bool | int | float):
            return value
        return shown(value, limit)

    out = {str(k)[:64]: one(v) for k, v in list(arguments.items())[:30]}
    if "confirmation_token" in out:
        out["confirmation_token"] = "<given>" if arguments["confirmation_token"] else None
    return out


def first_problem(exc: ValidationError) -> tuple[str, str, str]:
    """(field, check, text) of a validation error's first problem, bounded for a model."""
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(p) for p in err["loc"]) or "arguments"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        text = f"{field}: required argument is missing"
    elif err["type"] == "extra_forbidden":
        text = f"{field}: unknown argument"
    else:
        text = f"{field} = {shown(err.get('input'))}: {clip(msg, 300)}"
    more = exc.error_count() - 1
    if more:
        text += f" (and {more} more problem{'s' if more > 1 else ''})"
    return field, err["type"], text


def tool_error(exc: BaseException) -> ToolError:
    """The text for `exc`. The caller's input was validated (and any refusal audited)
    before the tool ran, so a ValidationError or ValueError from inside is ours."""
    if isinstance(exc, PolicyRefusal):
        hint = _NEXT.get(exc.rule, "")
        detail = clip(exc.detail, 400).rstrip(". ")
        return ToolError(
            clip(f"Refused by rule '{exc.rule}': {detail}. {NOTHING_CHANGED} {hint}".strip())
        )
    if isinstance(exc, DeviceUnavailable):
        return ToolError(clip(f"Device unavailable: {exc}. See grid_state for what is online."))
    if isinstance(exc, SolverFailed):
        return ToolError(clip(f"No plan could be made: {exc.diagnosis}"))
    if isinstance(exc, StoreError):
        return ToolError(clip(f"The telemetry store failed: {exc}. Try again shortly."))
    if isinstance(exc, GridpilotError):
        return ToolError(clip(str(exc)))
    ref = uuid.uuid4().hex[:12]
    log.error("internal error ref=%s", ref, exc_info=exc)
    return ToolError(
        f"Internal error in gridpilot (reference {ref}); not caused by your input. "
        "The server log has the details; try again or ask an operator."
    )


async def run_tool(fn: Callable[[], T]) -> T:
    """Run a blocking tool function off the event loop, mapping its errors once."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except ToolError:
        raise
    except Exception as exc:
        raise tool_error(exc) from None
