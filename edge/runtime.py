"""One call that brings a site up: broker (embedded or external), simulator, gateway.

`gridpilot demo`, `gridpilot sim run` and the tests of the rooms above use it, so
they all start the field side the same way and stop it in the right order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edge.broker import EmbeddedBroker
from edge.gateway import Gateway
from edge.mqtt import shown
from edge.sim import Scenario, SiteSimulator
from grid.clock import Clock, SimClock
from grid.config import SiteConfig
from grid.store import Store, open_store

log = logging.getLogger(__name__)


@dataclass
class SiteRuntime:
    site: SiteConfig
    clock: Clock
    store: Store
    broker_url: str
    gateway: Gateway | None
    simulator: SiteSimulator | None
    broker: EmbeddedBroker | None = None
    _owns_store: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """Devices first, then the gateway (which flushes), then store and broker."""
        if self.simulator is not None:
            self.simulator.stop()
        if self.gateway is not None:
            self.gateway.stop()
        if self._owns_store:
            self.store.close()
        if self.broker is not None:
            self.broker.stop()


def start_site(
    site: SiteConfig,
    *,
    broker_url: str | None = None,
    store: Store | None = None,
    clock: Clock | None = None,
    speed: float = 60.0,
    seed: int = 0,
    scenario: Scenario | None = None,
    interval_s: int = 5,
    simulate: bool = True,
    gateway: bool = True,
    client_id: str = "gridpilot-gateway",
) -> SiteRuntime:
    """Start the field side of `site`.

    `broker_url` defaults to the site's `settings.broker_url`; "embedded" starts an
    amqtt broker on a free loopback port. `clock` defaults to simulated time from
    now at `speed` times real time; `store` to the site's `settings.store_url` (then
    closed by `stop()`). Pass `simulate=False` for a real site's gateway only, or
    `gateway=False` for the simulated devices only."""
    broker_url = broker_url or site.settings.broker_url
    clock = clock or SimClock(start=datetime.now(UTC).replace(microsecond=0), speed=speed)
    broker = None
    owns_store = store is None
    parts: list = []
    try:
        if broker_url == "embedded":
            broker = EmbeddedBroker()
            broker.start()
            broker_url = broker.url
        store = store or open_store(site.settings.store_url)
        gw = None
        if gateway:
            gw = Gateway(site, store, clock, broker_url, client_id=client_id)
            gw.start()
            parts.append(gw)
        sim = None
        if simulate:
            sim = SiteSimulator(
                site, clock, broker_url, seed=seed, scenario=scenario, interval_s=interval_s
            )
            sim.start()
            parts.append(sim)
    except BaseException:
        for part in reversed(parts):
            part.stop()
        if broker is not None:
            broker.stop()
        raise
    log.info("site %s running on %s", site.site.name, shown(broker_url))
    return SiteRuntime(site, clock, store, broker_url, gw, sim, broker, owns_store)
