"""The few kinds of failure gridpilot knows, each handled once at the edges.

The CLI maps them to exit codes, the MCP layer to `ToolError` text and the audit
log to outcomes; code in between raises them and lets them travel.
"""

from __future__ import annotations


class GridpilotError(Exception):
    """Base of every error a user is meant to read."""

    exit_code = 1


class ConfigError(GridpilotError):
    """The site file (or another setting) is wrong; a person must fix it."""

    exit_code = 2


class StoreError(GridpilotError):
    """The store refused data or a query for a reason retrying will not cure."""

    exit_code = 3


class DeviceUnavailable(GridpilotError):
    """A device is offline or did not acknowledge in time; may pass by itself."""

    exit_code = 4


class PolicyRefusal(GridpilotError):
    """A guardrail rule denied an action; `rule` names it, `detail` gives the numbers."""

    exit_code = 5

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"refused by rule '{rule}': {detail}")
        self.rule = rule
        self.detail = detail


class SolverFailed(GridpilotError):
    """No acceptable plan; `diagnosis` says which constraint could not be met."""

    exit_code = 6

    def __init__(self, diagnosis: str) -> None:
        super().__init__(f"no plan: {diagnosis}")
        self.diagnosis = diagnosis
