"""Principals and what each role may do.

Roles nest: viewer < agent < operator < admin. An agent acts autonomously within
policy; an operator may also switch relays directly (critical ones too, with a
confirmation); an admin may also halt and resume the site.
"""

from __future__ import annotations

import hmac
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from grid.config import Role, SiteConfig, hash_token

ROLE_RANK: dict[str, int] = {"viewer": 0, "agent": 1, "operator": 2, "admin": 3}


class Capability(StrEnum):
    READ = "read"  # state, history, forecasts, audit
    PLAN = "plan"  # optimize: produces a plan, changes nothing
    ACT = "act"  # dispatch plans, setpoints, switch non-critical relays, leases
    OPERATE = "operate"  # switch any relay, including critical loads (with confirmation)
    ADMIN = "admin"  # halt, resume


MIN_ROLE: dict[Capability, str] = {
    Capability.READ: "viewer",
    Capability.PLAN: "agent",
    Capability.ACT: "agent",
    Capability.OPERATE: "operator",
    Capability.ADMIN: "admin",
}


class Caller(BaseModel):
    """Who is asking: the principal's name and role."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role

    @property
    def automated(self) -> bool:
        """Agents act without a person watching each step, so interlocks bind them hardest."""
        return self.role == "agent"

    def can(self, capability: Capability) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[MIN_ROLE[capability]]


def caller_named(site: SiteConfig, name: str) -> Caller:
    principal = site.principal(name)
    return Caller(name=principal.name, role=principal.role)


def caller_for_token(site: SiteConfig, token: str) -> Caller | None:
    """The principal whose token hash matches, or None."""
    digest = hash_token(token)
    for principal in site.principals:
        # compare_digest: the time taken must not tell how much of a hash matched
        if principal.token_sha256 and hmac.compare_digest(principal.token_sha256, digest):
            return Caller(name=principal.name, role=principal.role)
    return None
