"""Leases: an agent holds an asset for a while at a priority.

A higher priority preempts the holder, who is told; an equal or lower one is
refused with the holder's name (it may wait and ask again). Safety daemons take
higher priorities than economic ones, so grid response outranks arbitrage. How high
and how long a principal may hold is its role's ceiling, checked by the Actuator.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from pydantic import BaseModel

from grid.clock import Clock
from grid.errors import PolicyRefusal

MAX_LEASE_S = 24 * 3600


class Lease(BaseModel):
    asset: str
    holder: str
    priority: int
    expires_at: datetime
    purpose: str = ""


class LeaseGrant(BaseModel):
    lease: Lease
    preempted: Lease | None = None


class Leases:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._held: dict[str, Lease] = {}
        self._notices: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def _live(self, asset: str) -> Lease | None:
        lease = self._held.get(asset)
        if lease is not None and lease.expires_at <= self._clock.now():
            del self._held[asset]
            return None
        return lease

    def holder(self, asset: str) -> Lease | None:
        with self._lock:
            return self._live(asset)

    def acquire(
        self, asset: str, holder: str, priority: int, duration_s: float, purpose: str = ""
    ) -> LeaseGrant:
        if not 0 < duration_s <= MAX_LEASE_S:
            raise ValueError(f"duration_s must be in (0, {MAX_LEASE_S}], got {duration_s}")
        if not 0 <= priority <= 100:
            raise ValueError(f"priority must be in [0, 100], got {priority}")
        with self._lock:
            current = self._live(asset)
            preempted = None
            if current is not None and current.holder != holder:
                if priority <= current.priority:
                    raise PolicyRefusal(
                        "lease",
                        f"{asset} is leased to {current.holder} at priority {current.priority} "
                        f"until {current.expires_at:%H:%M:%S}Z; yours ({priority}) does not "
                        "outrank it: wait for it to expire or be released",
                    )
                preempted = current
                self._notices.setdefault(current.holder, []).append(
                    f"your lease on {asset} was preempted by {holder} (priority {priority} > "
                    f"{current.priority})"
                )
            lease = Lease(
                asset=asset,
                holder=holder,
                priority=priority,
                purpose=purpose,
                expires_at=self._clock.now() + timedelta(seconds=duration_s),
            )
            self._held[asset] = lease
            return LeaseGrant(lease=lease, preempted=preempted)

    def release(
        self, asset: str, holder: str, *, below_priority: int | None = None
    ) -> Lease | None:
        """Release `holder`'s lease; with `below_priority`, also break another holder's
        lease of a lower priority (an operator taking a lease back). Returns what ended."""
        with self._lock:
            current = self._live(asset)
            if current is None:
                return None
            if current.holder != holder:
                if below_priority is None or current.priority >= below_priority:
                    return None
                self._notices.setdefault(current.holder, []).append(
                    f"your lease on {asset} was broken by {holder}"
                )
            del self._held[asset]
            return current

    def check(self, asset: str, caller: str) -> Lease | None:
        """The lease that blocks `caller` from acting on `asset`, if any."""
        with self._lock:
            lease = self._live(asset)
        return lease if lease is not None and lease.holder != caller else None

    def notices(self, holder: str) -> list[str]:
        """Messages for a holder (preemptions), handed out once."""
        with self._lock:
            return self._notices.pop(holder, [])

    def all(self) -> list[Lease]:
        with self._lock:
            return [lease for asset in list(self._held) if (lease := self._live(asset))]
