"""Bearer tokens from the site file, mapped to principals; and who is calling now."""

from __future__ import annotations

from dataclasses import dataclass

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver.exceptions import ToolError

from grid.config import SiteConfig
from guardrails.principals import Caller, caller_for_token
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
        return Caller(name=token.client_id, role=token.scopes[0])
    if state.default_caller is not None:
        return state.default_caller
    raise ToolError(
        "no principal: connect with a bearer token, or name settings.stdio_principal "
        "in the site file"
    )
