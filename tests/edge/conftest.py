"""A simulated site wired to a real broker, a gateway and a real store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.gateway import Gateway
from edge.protocol import Command
from edge.sim import SiteSimulator
from grid.clock import SimClock
from grid.config import SiteConfig, load_site
from grid.store import Store
from grid.store.sqlite import SQLiteStore
from tests.services.process import wait_until

EXAMPLE = Path(__file__).parents[2] / "examples" / "site.toml"
# A June day at 10:00 UTC: the sun is up over the example site, so PV produces.
NOON = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def site() -> SiteConfig:
    return load_site(EXAMPLE)


@dataclass
class Rig:
    site: SiteConfig
    clock: SimClock
    store: Store
    gateway: Gateway
    sim: SiteSimulator
    extra: list[Callable[[], None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.site.site.name

    def steps(self, n: int) -> None:
        """Advance the clock and step the simulator `n` times, then wait until the
        gateway has taken in every telemetry message sent and written it."""
        for _ in range(n):
            self.clock.advance(self.sim.interval_s)
            self.sim.step()
        self.settle()

    def settle(self) -> None:
        def caught_up() -> bool:
            return all(
                self.gateway.last_seq(t.id) == t.seq - 1
                for t in self.sim.twins.values()
                if t.seq > 0 and t.online
            )

        wait_until(caught_up, 15.0, "gateway catching up with the simulator")
        self.gateway.flush()

    def series(self, asset: str, quantity: str) -> list[float]:
        end = self.clock.now() + timedelta(seconds=1)
        samples = self.store.query(self.name, asset, quantity, NOON - timedelta(days=1), end)
        return [s.value for s in samples]

    def command(self, device: str, action: str, cid: str, **params: float | bool) -> Command:
        now = self.clock.now()
        return Command(
            id=cid,
            device=device,
            action=action,  # type: ignore[arg-type]
            params=params,
            issued_at=now,
            expires_at=now + timedelta(minutes=5),
        )


def make_rig(
    site: SiteConfig, broker_url: str, store: Store, *, interval_s: int = 60, **gateway_kw
) -> Rig:
    clock = SimClock(start=NOON)
    gateway = Gateway(
        site,
        store,
        clock,
        broker_url,
        client_id="gw-test",
        persistent_session=False,
        offline_after_s=600,
        **gateway_kw,
    )
    gateway.start()
    sim = SiteSimulator(site, clock, broker_url, seed=3, interval_s=interval_s)
    sim.connect()
    # Every twin's retained status and state has reached the gateway.
    wait_until(
        lambda: all(s.online for s in gateway.state.snapshot().values()), 10.0, "devices online"
    )
    return Rig(site, clock, store, gateway, sim)


@pytest.fixture
def rig(site: SiteConfig, mosquitto, tmp_path: Path) -> Iterator[Rig]:
    store = SQLiteStore(tmp_path / "edge.db")
    rig = make_rig(site, mosquitto.url, store)
    yield rig
    rig.sim.stop()
    rig.gateway.stop()
    store.close()
