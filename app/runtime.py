"""The runtime: the one object that wires the parts of a running site together.

It owns the store, the clock, the field connection (gateway, and in embedded mode
the broker and simulator), the Actuator with its audit log, leases and kill switch,
the plan book and the confirmation tokens. Tools receive it; nothing else is global.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edge.runtime import SiteRuntime, start_site
from edge.state import LiveState
from forecasting.anomaly import assess
from grid.clock import Clock, RealClock
from grid.config import SiteConfig
from grid.store import Store, open_store
from guardrails.actuator import Actuator
from guardrails.audit import AuditLog
from guardrails.confirmations import Confirmations
from guardrails.executor import PlanExecutor
from guardrails.killswitch import KillSwitch
from guardrails.leases import Leases
from guardrails.pending import PendingBook
from guardrails.plans import PlanBook
from guardrails.policy import SiteSnapshot
from guardrails.snapshot import site_snapshot

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    site: SiteConfig
    clock: Clock
    store: Store
    field_side: SiteRuntime
    actuator: Actuator
    plans: PlanBook
    confirmations: Confirmations
    state_dir: Path
    executor: PlanExecutor
    _closers: list = field(default_factory=list)

    @property
    def live(self) -> LiveState:
        assert self.field_side.gateway is not None  # open_runtime always starts one
        return self.field_side.gateway.state

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    def snapshot(self) -> SiteSnapshot:
        return site_snapshot(self.site, self.live, self.clock.now())

    def close(self) -> None:
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # closing the rest matters more than one failure
                log.exception("error while shutting down")


# How often the plan executor looks for a step that has started, in wall seconds: a
# step is applied within this of its start (far below a 15-min step, and below one
# simulated step even on a clock running 60 times faster than the wall).
TICK_S = 0.25


def _tick_forever(executor: PlanExecutor):
    """Run the executor's tick in a thread; returns the function that stops it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(TICK_S):
            try:
                executor.tick()
            except Exception:  # one bad tick must not end plan execution for good
                log.exception("plan executor tick failed")

    thread = threading.Thread(target=loop, name="plan-executor", daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(timeout=5)

    return close


def open_runtime(
    site: SiteConfig,
    *,
    clock: Clock | None = None,
    simulate: bool | None = None,
    speed: float | None = None,
) -> Runtime:
    """Start everything a site needs. With `broker_url = "embedded"` this also starts the
    embedded broker and the site simulator (on a simulated clock running at `speed`)."""
    embedded = site.settings.broker_url == "embedded"
    simulate = embedded if simulate is None else simulate
    if clock is None and not simulate:
        clock = RealClock()
    state_dir = site.settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    closers: list = []
    store = open_store(site.settings.store_url, spool_dir=state_dir / "spool")
    closers.append(store.close)
    try:
        field_side = start_site(
            site, store=store, clock=clock, speed=speed or 60.0, simulate=simulate
        )
        closers.append(field_side.stop)
        clock = field_side.clock
        gateway = field_side.gateway
        assert gateway is not None
        audit = AuditLog(state_dir / "audit.db")
        pending = PendingBook(state_dir / "pending.db")
        closers += [audit.close, pending.close]
        live = gateway.state

        def snapshot() -> SiteSnapshot:
            return site_snapshot(site, live, clock.now())

        def trust(asset: str) -> tuple[bool, str]:
            verdict = assess(site, store, asset, clock.now(), registry_dir=state_dir / "models")
            return verdict.trustworthy, verdict.reason

        actuator = Actuator(
            site,
            field_side.gateway,
            snapshot,
            clock,
            audit,
            pending,
            Leases(clock),
            KillSwitch(state_dir / "halt.json"),
            trust=trust,
        )
        executor = PlanExecutor(site, actuator, snapshot, clock)
        closers.append(_tick_forever(executor))
        runtime = Runtime(
            site=site,
            clock=clock,
            store=store,
            field_side=field_side,
            actuator=actuator,
            plans=PlanBook(site.policy.plan_ttl_s),
            confirmations=Confirmations(),
            state_dir=state_dir,
            executor=executor,
            _closers=closers,
        )
        settled = runtime.actuator.reconcile()
        if settled:
            log.warning("reconciled %d request(s) left pending by a previous run", len(settled))
        return runtime
    except BaseException:
        for close in reversed(closers):
            close()
        raise
