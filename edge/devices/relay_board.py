"""The seed's ESP12F 4-relay board: relays, per-channel power and current, supply
voltage, and the revert-to-safe-state timer, all through the firmware's own logic."""

from __future__ import annotations

from typing import Any

from edge.devices.base import Twin
from edge.firmware import logic
from edge.protocol import heartbeat_topic
from grid.clock import Clock
from grid.config import Device


class RelayBoardTwin(Twin):
    kind = "relay_board"

    def __init__(self, site: str, device: Device, clock: Clock) -> None:
        super().__init__(site, device, clock)
        self.channels = device.channels
        self.safe_state = device.safe_state
        self.revert_s = float(device.revert_s)
        # Boots in the safe state: nothing is known about the site yet.
        self.relays = logic.revert([False] * self.channels, self.safe_state)
        self.reverted = False
        self.reverts = 0
        self.last_heartbeat_s = clock.time()
        self._silence_handled = False
        self.demand_kw = [0.0] * self.channels  # what each load would draw if on
        self.voltage_v = 230.0

    def subscriptions(self) -> list[str]:
        return [*super().subscriptions(), heartbeat_topic(self.site)]

    def on_message(self, name: str, payload: bytes) -> None:
        if name == heartbeat_topic(self.site):
            with self.lock:
                self.last_heartbeat_s = self.clock.time()
                self._silence_handled = False
            return
        super().on_message(name, payload)

    def powers_kw(self) -> list[float]:
        return [d if on else 0.0 for d, on in zip(self.demand_kw, self.relays, strict=True)]

    def values(self) -> dict[str, float]:
        return logic.board_values(self.relays, self.demand_kw, self.voltage_v)

    def state(self) -> dict[str, Any]:
        return logic.board_state(self.relays, self.reverted)

    def step(self, dt_s: float, now_s: float) -> None:
        reverted_now = False
        with self.lock:
            if not self._silence_handled and logic.revert_due(
                self.last_heartbeat_s, now_s, self.revert_s
            ):
                self.relays = logic.revert(self.relays, self.safe_state)
                self.reverted = True
                self.reverts += 1
                self._silence_handled = True
                reverted_now = True
        if reverted_now:
            self.publish_state()

    def handle_command(self, raw: Any, now_s: float) -> dict[str, Any] | None:
        with self.lock:
            before = self.commands_executed
            self.relays, self.reverted, ack, actuated = logic.handle_relay_command(
                raw if isinstance(raw, dict) else {},
                self.id,
                self.relays,
                self.reverted,
                now_s,
                self.executed,
            )
            self.commands_executed = before + int(actuated)
        return ack
