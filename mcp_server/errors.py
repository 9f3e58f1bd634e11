"""One mapping from gridpilot's errors to the text a model reads (`ToolError`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from grid.config import format_validation_error
from grid.errors import (
    DeviceUnavailable,
    GridpilotError,
    PolicyRefusal,
    SolverFailed,
    StoreError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    "plan_expired": "Call optimize again and dispatch the new plan_id.",
    "plan_unknown": "Call optimize first and dispatch the plan_id it returns.",
    "plan_changed": "Call optimize again.",
    "plan_state_drift": "The site moved away from the plan; call optimize again.",
    "confirmation": "Call again without confirmation_token to get a fresh preview.",
}


def tool_error(exc: BaseException) -> ToolError:
    if isinstance(exc, PolicyRefusal):
        hint = _NEXT.get(exc.rule, "Nothing was changed.")
        return ToolError(f"Refused by rule '{exc.rule}': {exc.detail}. Nothing was changed. {hint}")
    if isinstance(exc, ValidationError):
        return ToolError("Invalid input. " + format_validation_error(exc, "arguments"))
    if isinstance(exc, ValueError):
        return ToolError(f"Invalid input: {exc}")
    if isinstance(exc, DeviceUnavailable):
        return ToolError(f"Device unavailable: {exc}. See grid_state for what is online.")
    if isinstance(exc, SolverFailed):
        return ToolError(f"No plan could be made: {exc.diagnosis}")
    if isinstance(exc, StoreError):
        return ToolError(f"The telemetry store failed: {exc}. Try again shortly.")
    if isinstance(exc, GridpilotError):
        return ToolError(str(exc))
    log.exception("unexpected error in a tool", exc_info=exc)
    return ToolError(f"Internal error ({type(exc).__name__}); the server log has details.")


async def run_tool(fn: Callable[[], T]) -> T:
    """Run a blocking tool function off the event loop, mapping its errors once."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except ToolError:
        raise
    except Exception as exc:
        raise tool_error(exc) from None
