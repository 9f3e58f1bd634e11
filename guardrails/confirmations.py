"""Confirmation tokens: a preview now, the action only when the same caller sends the
token back with the same arguments before it expires (used when the MCP client
cannot be asked through elicitation).

Expiry runs on the wall clock whatever the simulation speed: a person reads the
preview and answers in real seconds. A token belongs to the principal it was issued
to; anyone else presenting it is refused and the token stays usable by its owner.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from grid.clock import Clock, RealClock
from grid.errors import PolicyRefusal

TOKEN_TTL_S = 120


def _fingerprint(action: str, arguments: dict[str, Any]) -> str:
    body = json.dumps([action, arguments], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class _Issued:
    principal: str
    fingerprint: str
    expires_at: datetime


class Confirmations:
    def __init__(self, ttl_s: float = TOKEN_TTL_S, wall: Clock | None = None) -> None:
        self._wall = wall or RealClock()
        self._ttl = timedelta(seconds=ttl_s)
        self._pending: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def issue(self, principal: str, action: str, arguments: dict[str, Any]) -> tuple[str, datetime]:
        """A new token and its wall-clock expiry."""
        token = "cfm_" + secrets.token_urlsafe(16)
        with self._lock:
            now = self._wall.now()
            self._pending = {t: v for t, v in self._pending.items() if v.expires_at > now}
            issued = _Issued(principal, _fingerprint(action, arguments), now + self._ttl)
            self._pending[token] = issued
        return token, issued.expires_at

    def redeem(self, token: str, principal: str, action: str, arguments: dict[str, Any]) -> None:
        """Use a token once. Refuses a token that is unknown, expired, another caller's,
        or for other arguments; only a successful redemption (or expiry) uses it up."""
        with self._lock:
            found = self._pending.get(token)
            if found is None:
                raise PolicyRefusal(
                    "confirmation",
                    "unknown or already used confirmation token; "
                    "call again without it to get a new preview",
                )
            if found.expires_at <= self._wall.now():
                del self._pending[token]
                raise PolicyRefusal(
                    "confirmation",
                    f"confirmation token expired at {found.expires_at:%H:%M:%S}Z (wall clock); "
                    "call again without it for a new preview",
                )
            if found.principal != principal:
                raise PolicyRefusal(
                    "confirmation", "the confirmation token was issued to another principal"
                )
            if found.fingerprint != _fingerprint(action, arguments):
                raise PolicyRefusal(
                    "confirmation",
                    "the token was issued for other arguments; confirm exactly what was "
                    "previewed, or call again without it for a new preview",
                )
            del self._pending[token]
