"""The `Store` contract both back ends keep, and the one way to open a store by URL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from grid.errors import ConfigError
from grid.telemetry import Aggregate, Event, Measurement, Sample


class Store(Protocol):
    def write(self, points: Sequence[Measurement]) -> None:
        """Write a batch. A point with the series and time of a stored one replaces it."""
        ...

    def query(
        self,
        site: str,
        asset: str,
        quantity: str,
        start: datetime,
        end: datetime,
        window_s: int | None = None,
        aggregate: Aggregate = "mean",
    ) -> list[Sample]:
        """Samples with start <= time < end, oldest first. With `window_s`, one sample per
        non-empty window aligned to the epoch, stamped with the window's start."""
        ...

    def latest(self, site: str, asset: str | None = None) -> list[Measurement]:
        """The newest measurement of every series of the site (or of one asset)."""
        ...

    def write_events(self, events: Sequence[Event]) -> None: ...

    def query_events(
        self,
        site: str,
        start: datetime,
        end: datetime,
        kind: str | None = None,
        asset: str | None = None,
    ) -> list[Event]:
        """Events with start <= time < end, oldest first."""
        ...

    def close(self) -> None: ...


def open_store(url: str, spool_dir: Path | None = None) -> Store:
    """`sqlite:///path`, `sqlite:///:memory:`, or
    `influxdb[s]://[user:password@]host:port/database[?token=...&create=1]`.

    `spool_dir` is where the store keeps writes it could not deliver.
    """
    if url.startswith("sqlite:///"):
        from grid.store.sqlite import SQLiteStore

        path = url.removeprefix("sqlite:///")
        spool = spool_dir / f"sqlite-{Path(path).name}.db" if spool_dir else None
        return SQLiteStore(path, spool_path=spool)
    if url.startswith(("influxdb://", "influxdbs://")):
        from grid.store.influx import InfluxStore

        return InfluxStore.from_url(url, spool_dir=spool_dir)
    raise ConfigError(f"store url {url!r}: must start with sqlite:///, influxdb:// or influxdbs://")
