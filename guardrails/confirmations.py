"""Confirmation tokens: a preview now, the action only when the same caller sends the
token back with the same arguments before it expires (used when the MCP client
cannot be asked through elicitation)."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

from grid.clock import Clock
from grid.errors import PolicyRefusal

TOKEN_TTL_S = 120


def _fingerprint(principal: str, action: str, arguments: dict[str, Any]) -> str:
    body = json.dumps([principal, action, arguments], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class Confirmations:
    def __init__(self, clock: Clock, ttl_s: float = TOKEN_TTL_S) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)
        self._pending: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def issue(self, principal: str, action: str, arguments: dict[str, Any]) -> tuple[str, datetime]:
        token = "cfm_" + secrets.token_urlsafe(12)
        expires = self._clock.now() + self._ttl
        with self._lock:
            now = self._clock.now()
            self._pending = {t: v for t, v in self._pending.items() if v[1] > now}
            self._pending[token] = (_fingerprint(principal, action, arguments), expires)
        return token, expires

    def redeem(self, token: str, principal: str, action: str, arguments: dict[str, Any]) -> None:
        """Use a token once; refuses a token that is unknown, expired, or for other
        arguments or another caller (the arguments are what was previewed)."""
        with self._lock:
            found = self._pending.pop(token, None)
        if found is None:
            raise PolicyRefusal(
                "confirmation",
                "unknown or already used confirmation token; "
                "call again without it to get a new preview",
            )
        fingerprint, expires = found
        if expires <= self._clock.now():
            raise PolicyRefusal(
                "confirmation",
                f"confirmation token expired at "
                f"{expires:%H:%M:%S}Z; call again without it for a new preview",
            )
        if fingerprint != _fingerprint(principal, action, arguments):
            raise PolicyRefusal(
                "confirmation",
                "the token was issued for other arguments or "
                "another caller; confirm exactly what was previewed",
            )
