"""What a tool needs of a running site: the narrow interface `app.runtime.Runtime`
fulfils. Tools read through it and act through its Actuator; they never start the
field side themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from edge.state import LiveState
from grid.clock import Clock
from grid.config import SiteConfig
from grid.store import Store
from guardrails.actuator import Actuator
from guardrails.confirmations import Confirmations
from guardrails.executor import PlanExecutor
from guardrails.plans import PlanBook
from guardrails.policy import SiteSnapshot


class Runtime(Protocol):
    site: SiteConfig
    clock: Clock
    store: Store
    actuator: Actuator
    plans: PlanBook
    confirmations: Confirmations
    executor: PlanExecutor

    @property
    def live(self) -> LiveState: ...

    @property
    def models_dir(self) -> Path: ...

    def snapshot(self) -> SiteSnapshot: ...
