"""Bearer tokens from the site file, mapped to principals; and who is calling now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver.exceptions import ToolError

from grid.config import SiteConfig
from guardrails.audit import AuditEntry, AuditLog
from guardrails.principals import Caller, caller_for_token, caller_named
from tools.context import Runtime


class SiteTokenVerifier:
    """Accepts exactly the tokens whose SHA-256 is listed under [[principals]]."""

    def __init__(self, site: SiteConfig) -> None:
        self._site = site

    async def verify_token(self, token: str) -> AccessToken | None:
        caller = caller_for_token(self._site, token)
        if caller is None:
            return None
        return AccessToken(token=token, client_id=caller.name, scopes=[caller.role])


@dataclass(frozen=True)
class ServerState:
    """What every tool call needs: the runtime, and who a caller is when there is no
    token (stdio and in-process: the principal named in the site file)."""

    runtime: Runtime
    default_caller: Caller | None


def current_caller(state: ServerState) -> Caller:
    token = get_access_token()
    if token is not None:
        return caller_named(state.runtime.site, token.client_id)
    if state.default_caller is not None:
        return state.default_caller
    raise ToolError(
        "no principal: connect with a bearer token, or name settings.stdio_principal "
        "in the site file"
    )


# HTTP refusals that happen before any tool runs, and the rule each one stands for.
_GATE_RULES = {
    401: ("auth", "no valid bearer token"),
    403: ("origin", "Origin header not allowed (DNS rebinding protection)"),
    421: ("host", "Host header not allowed (DNS rebinding protection)"),
}


class AuditedGate:
    """ASGI middleware: a request the HTTP layer refuses (no or wrong token, foreign
    Host or Origin) still gets its audit record. The token itself is never written,
    only whether one was given."""

    def __init__(self, app: Any, audit: AuditLog, clock: Any) -> None:
        self.app = app
        self._audit = audit
        self._clock = clock

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] in _GATE_RULES:
                await anyio.to_thread.run_sync(self._record, scope, message["status"])
            await send(message)

        await self.app(scope, receive, watch)

    def _record(self, scope: dict, status: int) -> None:
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        rule, detail = _GATE_RULES[status]
        arguments = {
            "method": scope.get("method", ""),
            "path": scope.get("path", "")[:200],
            "token": "given"
            if b"authorization" in {k.lower() for k, _ in scope.get("headers", [])}
            else "missing",
            "host": headers.get("host", b"").decode("latin-1")[:200],
            "http_status": status,
        }
        self._audit.append(
            AuditEntry(
                time=self._clock.now(),
                principal="anonymous",
                role="none",
                action="http",
                arguments=arguments,
                decision={
                    "allowed": False,
                    "results": [{"rule": rule, "allowed": False, "detail": detail}],
                },
                outcome="refused",
                detail=f"refused by rule '{rule}': {detail} (HTTP {status})",
            )
        )
