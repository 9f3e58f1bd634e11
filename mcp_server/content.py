"""MCP resources (site, state, policy, recent audit, plans) and prompts."""

from __future__ import annotations

import json

from mcp.server import MCPServer

import prompts
from mcp_server.auth import ServerState, current_caller
from tools import review, state


def register_resources(server: MCPServer, st: ServerState) -> None:
    rt = st.runtime

    @server.resource("grid://site", mime_type="application/json", title="Site description")
    def site() -> str:
        """The site file as loaded: assets, tariff, devices and policy (no token hashes)."""
        return rt.site.model_dump_json(exclude={"principals"}, indent=2)

    @server.resource("grid://state", mime_type="application/json", title="Live state")
    def live_state() -> str:
        """The same content as the grid_state tool."""
        return state.grid_state(rt, current_caller(st)).model_dump_json(indent=2)

    @server.resource("grid://policy", mime_type="application/json", title="Policy")
    def policy() -> str:
        """The caller's role, what it may do, and the site's limits."""
        report = review.policy(rt, current_caller(st), review.PolicyRequest())
        return report.model_dump_json(indent=2)

    @server.resource("grid://audit/recent", mime_type="application/json", title="Recent audit")
    def audit_recent() -> str:
        """The 20 most recent audit records."""
        page = review.audit_log(rt, current_caller(st), review.AuditRequest(limit=20))
        return page.model_dump_json(indent=2)

    @server.resource("grid://plans/{plan_id}", mime_type="application/json", title="A plan")
    def plan(plan_id: str) -> str:
        """A plan from optimize, with every step's setpoints, its hash and expiry."""
        stored = rt.plans.get(plan_id)
        if stored is None:
            return json.dumps({"error": f"no plan {plan_id[:64]!r}; call optimize first"})
        return stored.model_dump_json(indent=2)

    @server.resource(
        "grid://plans/{plan_id}/status", mime_type="application/json", title="A plan's run"
    )
    def plan_run(plan_id: str) -> str:
        """A dispatched plan's execution: status, each step applied, release to defaults."""
        run = rt.executor.status(plan_id)
        if run is None:
            return json.dumps({"error": f"plan {plan_id!r} was never dispatched"})
        return run.model_dump_json(indent=2)


def register_prompts(server: MCPServer) -> None:
    for template in prompts.load_all():
        _add_prompt(server, template)


def _add_prompt(server: MCPServer, template: prompts.PromptTemplate) -> None:
    # Every template so far takes only `hours` or `target_kw`; the signature must name
    # them for the SDK to list them as arguments.
    if template.arguments == ["hours"]:

        def render(hours: str = "24") -> str:
            return template.render(hours=hours)
    elif template.arguments == ["target_kw"]:

        def render(target_kw: str) -> str:
            return template.render(target_kw=target_kw)
    else:
        raise ValueError(f"prompt {template.name}: unsupported arguments {template.arguments}")
    render.__doc__ = template.description
    server.prompt(name=template.name, title=template.title, description=template.description)(
        render
    )
