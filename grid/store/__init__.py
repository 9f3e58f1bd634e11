"""Where telemetry and events are kept: SQLite embedded, InfluxDB deployed."""

from grid.store.base import Store, open_store

__all__ = ["Store", "open_store"]
