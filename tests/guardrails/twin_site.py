"""A simulated site without a broker: the real device twins, commanded in-process.

The twins run the same command handling as over MQTT (and as the firmware), and
their readings reach the same LiveState and snapshot code the gateway feeds, so
the guardrails see what they would see on a live site, thousands of times faster.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge.devices import make_twins
from edge.mapping import site_map
from edge.protocol import Ack, Command
from edge.state import LiveState
from grid.clock import SimClock
from grid.config import SiteConfig
from guardrails.actuator import Actuator
from guardrails.audit import AuditLog
from guardrails.killswitch import KillSwitch
from guardrails.leases import Leases
from guardrails.pending import PendingBook
from guardrails.policy import SiteSnapshot
from guardrails.snapshot import site_snapshot


class TwinSite:
    def __init__(self, site: SiteConfig, clock: SimClock) -> None:
        self.site = site
        self.clock = clock
        self.twins = make_twins(site, clock)
        for twin in self.twins.values():
            twin.online = True
        self.live = LiveState({d.id: d.kind for d in site.devices})
        self.map = site_map(site)
        self.sent: list[Command] = []
        self.report()

    def report(self) -> None:
        """Every device reports now (telemetry and state), as if over MQTT."""
        now = self.clock.now()
        for device, twin in self.twins.items():
            points = self.map.measurements(device, twin.values(), now)
            self.live.seen(device, now, points)
            self.live.set_state(device, twin.state(), now)

    def send_command(self, command: Command, timeout_s: float) -> Ack:
        self.sent.append(command)
        twin = self.twins[command.device]
        raw = json.loads(command.model_dump_json())
        ack = Ack.model_validate(twin.handle_command(raw, self.clock.time()))
        self.live.set_state(command.device, ack.state, self.clock.now())
        return ack

    def snapshot(self) -> SiteSnapshot:
        return site_snapshot(self.site, self.live, self.clock.now())


def make_actuator(site: SiteConfig, twin_site: TwinSite, root: Path, sender=None) -> Actuator:
    return Actuator(
        site,
        sender or twin_site,
        twin_site.snapshot,
        twin_site.clock,
        AuditLog(root / "audit.db"),
        PendingBook(root / "pending.db"),
        Leases(twin_site.clock),
        KillSwitch(root / "halt.json"),
    )
