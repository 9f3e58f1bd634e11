"""Principals and what each role may do.

Roles nest: viewer < agent < daemon < operator < admin. An agent acts autonomously
within policy; a daemon is an agent trusted with higher lease priorities (the safety
daemons); an operator may also switch relays directly (critical ones too, with a
confirmation); an admin may also halt and resume the site.
"""

from __future__ import annotations

import hmac
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from grid.config import Principal, Role, SiteConfig, hash_token

ROLE_RANK: dict[str, int] = {"viewer": 0, "agent": 1, "daemon": 2, "operator": 3, "admin": 4}

# (max lease priority, max lease duration s) per role, unless the site file says
# otherwise for a principal: without a ceiling, any agent could claim priority 100
# for a day and lock out the people who run the site.
LEASE_LIMITS: dict[str, tuple[int, float]] = {
    "viewer": (0, 0.0),
    "agent": (50, 3600.0),
    "daemon": (80, 4 * 3600.0),
    "operator": (90, 12 * 3600.0),
    "admin": (100, 24 * 3600.0),
}


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
    """Who is asking: the principal's name and role, and the lease ceilings that go with it."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    max_lease_priority: int | None = None
    max_lease_s: float | None = None

    @property
    def automated(self) -> bool:
        """Agents and daemons act without a person watching each step, so interlocks bind
        them hardest."""
        return self.role in ("agent", "daemon")

    @property
    def lease_priority_cap(self) -> int:
        return (
            LEASE_LIMITS[self.role][0]
            if self.max_lease_priority is None
            else self.max_lease_priority
        )

    @property
    def lease_s_cap(self) -> float:
        return LEASE_LIMITS[self.role][1] if self.max_lease_s is None else self.max_lease_s

    def can(self, capability: Capability) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[MIN_ROLE[capability]]


def caller_of(principal: Principal) -> Caller:
    return Caller(
        name=principal.name,
        role=principal.role,
        max_lease_priority=principal.max_lease_priority,
        max_lease_s=principal.max_lease_s,
    )


def caller_named(site: SiteConfig, name: str) -> Caller:
    return caller_of(site.principal(name))


def caller_for_token(site: SiteConfig, token: str) -> Caller | None:
    """The principal whose token hash matches, or None."""
    digest = hash_token(token)
    for principal in site.principals:
        # compare_digest: the time taken must not tell how much of a hash matched
        if principal.token_sha256 and hmac.compare_digest(principal.token_sha256, digest):
            return caller_of(principal)
    return None
