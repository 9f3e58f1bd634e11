"""InfluxDB through its v1-compatible HTTP API (`/write`, `/query`).

The same two endpoints exist on InfluxDB 1.8+, on 2.x (with a DBRP mapping from
database to bucket) and on 3.x Core, so one adapter serves all three. Line
protocol comes from influxdb-client's `Point`, which gets the escaping right.
Writes that cannot be delivered go to a `Spool` on disk and are replayed in order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx2
from influxdb_client import Point, WritePrecision

from grid.errors import ConfigError, StoreError
from grid.store.spool import Spool
from grid.telemetry import (
    Aggregate,
    Event,
    Measurement,
    Quality,
    Sample,
    from_ns,
    to_ns,
)

log = logging.getLogger(__name__)


class StoreUnreachable(StoreError):
    """The server did not answer; retrying later may cure it."""


TELEMETRY = "telemetry"
EVENTS = "events"


def _lit(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=65_536)
def _series_key(site: str, asset: str, quantity: str, unit: str) -> str:
    """Measurement and tags of one series, escaped by influxdb-client's `Point`; built
    once per series, so a batch costs a string format per point, not an object."""
    line = (
        Point(TELEMETRY)
        .tag("site", site)
        .tag("asset", asset)
        .tag("quantity", quantity)
        .tag("unit", unit)
        .field("value", 0.0)
        .time(0, WritePrecision.NS)
        .to_line_protocol()
    )
    # Tag values escape "=", so the last " value=" is the field's own.
    return line.rsplit(" value=", 1)[0]


@lru_cache(maxsize=65_536)
def _line_head(site: str, asset: str, quantity: str, unit: str, quality: Quality) -> str:
    """Everything of a point's line before its value: one cached string per series."""
    return f'{_series_key(site, asset, quantity, unit)} quality="{quality.value}",value='


def measurement_line(p: Measurement, t_ns: int | None = None) -> str:
    ns = to_ns(p.time) if t_ns is None else t_ns
    head = _line_head(p.site, p.asset, p.quantity, p.unit, p.quality)
    return f"{head}{float(p.value)!r} {ns}"


def measurement_lines(points: Sequence[Measurement]) -> str:
    """One body for a batch; a run of points with the same time converts it once.
    Inlined rather than calling `measurement_line`: this loop is the store's hot path."""
    head = _line_head
    lines = []
    last_time, last_ns = None, 0
    for p in points:
        if p.time != last_time:
            last_time, last_ns = p.time, to_ns(p.time)
        lines.append(
            f"{head(p.site, p.asset, p.quantity, p.unit, p.quality)}{float(p.value)!r} {last_ns}"
        )
    return "\n".join(lines)


def event_line(e: Event) -> str:
    point = Point(EVENTS).tag("site", e.site).tag("kind", e.kind).tag("severity", e.severity.value)
    if e.asset:
        point = point.tag("asset", e.asset)
    return (
        point.field("message", e.message)
        .field("data", json.dumps(e.data, default=str))
        .time(to_ns(e.time), WritePrecision.NS)
        .to_line_protocol()
    )


class InfluxStore:
    """Events of one series at the very same nanosecond overwrite each other, as
    InfluxDB points do; stamp events from the clock and this does not arise."""

    def __init__(
        self,
        base_url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        spool_path: Path | None = None,
        retry_s: float = 1.0,
        timeout_s: float = 10.0,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self.database = database
        self.base_url = base_url
        self._http = httpx2.Client(
            base_url=base_url,
            headers=headers,
            auth=auth,
            timeout=httpx2.Timeout(timeout_s, connect=min(2.0, timeout_s)),
        )
        spool_path = spool_path or Path("var/spool") / f"influx-{database}.db"
        self._spool = Spool(spool_path)
        self._retry_s = retry_s
        self._next_try = 0.0
        self._lock = threading.Lock()
        self._create_pending = False

    @classmethod
    def from_url(cls, url: str, spool_dir: Path | None = None) -> InfluxStore:
        parts = urlsplit(url)
        database = parts.path.strip("/")
        if not database or not parts.hostname:
            raise ConfigError(
                f"store url {url!r}: want influxdb://[user:password@]host:port/database"
            )
        scheme = "https" if parts.scheme == "influxdbs" else "http"
        base = f"{scheme}://{parts.hostname}:{parts.port or 8086}"
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        spool_dir = spool_dir or Path("var/spool")
        store = cls(
            base,
            database,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            token=options.get("token"),
            spool_path=spool_dir / f"influx-{parts.hostname}-{parts.port or 8086}-{database}.db",
        )
        if options.get("create") in {"1", "true", "yes"}:
            try:
                store.create_database()
            except StoreUnreachable:
                # Start anyway and spool: the database is created before the first
                # write that reaches the server.
                log.warning("InfluxDB at %s unreachable; database created later", base)
                store._create_pending = True
        return store

    # -- writing ---------------------------------------------------------------

    def write(self, points: Sequence[Measurement]) -> None:
        if points:
            self._deliver(measurement_lines(points), len(points))

    def write_events(self, events: Sequence[Event]) -> None:
        if events:
            self._deliver("\n".join(event_line(e) for e in events), len(events))

    def _deliver(self, body: str, count: int) -> None:
        with self._lock:
            # Order matters: a newer batch never overtakes one still in the spool.
            if self._flush_locked() and self._post(body):
                return
            self._spool.append(body, count)

    def flush(self) -> bool:
        """Replay the spool now; True when it is empty afterwards."""
        with self._lock:
            self._next_try = 0.0
            return self._flush_locked()

    def pending_points(self) -> int:
        return self._spool.pending_points()

    def rejected_batches(self) -> int:
        return self._spool.rejected_batches()

    def _flush_locked(self) -> bool:
        while (batch := self._spool.oldest()) is not None:
            batch_id, body = batch
            try:
                delivered = self._post(body)
            except StoreError as exc:
                log.error(
                    "InfluxDB rejected a buffered batch; kept in %s: %s", self._spool.path, exc
                )
                self._spool.reject(batch_id, str(exc))
                continue
            if not delivered:
                return False
            self._spool.remove(batch_id)
        return True

    def _post(self, body: str) -> bool:
        """True when written; False when InfluxDB cannot be reached now."""
        now = time.monotonic()
        if now < self._next_try:
            return False
        if self._create_pending:
            try:
                self.create_database()
            except StoreUnreachable:
                self._next_try = now + self._retry_s
                return False
            self._create_pending = False
        try:
            response = self._http.post(
                "/write",
                params={"db": self.database, "precision": "ns"},
                content=body.encode(),
            )
        except httpx2.TransportError as exc:
            self._next_try = now + self._retry_s
            log.warning("InfluxDB at %s unreachable (%s); buffering writes", self.base_url, exc)
            return False
        if response.status_code in (200, 204):
            return True
        if response.status_code >= 500 or response.status_code == 429:
            self._next_try = now + self._retry_s
            return False
        raise StoreError(
            f"InfluxDB refused the write ({response.status_code}): {response.text[:300]}"
        )

    # -- reading ---------------------------------------------------------------

    def create_database(self) -> None:
        """InfluxDB 1.x only; 2.x and 3.x create buckets/databases their own way."""
        self._influxql(f"CREATE DATABASE {_ident(self.database)}", method="POST")

    def _influxql(self, q: str, method: str = "GET") -> list[dict]:
        params = {"db": self.database, "q": q, "epoch": "ns"}
        try:
            response = self._http.request(method, "/query", params=params)
        except httpx2.TransportError as exc:
            raise StoreUnreachable(f"InfluxDB at {self.base_url} unreachable: {exc}") from None
        if response.status_code != 200:
            raise StoreError(
                f"InfluxDB query failed ({response.status_code}): {response.text[:300]}"
            )
        payload = response.json()
        if "error" in payload:
            raise StoreError(f"InfluxDB query failed: {payload['error']}")
        result = payload["results"][0]
        if "error" in result:
            raise StoreError(f"InfluxDB query failed: {result['error']}")
        return result.get("series", [])

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
        where = (
            f"site={_lit(site)} AND asset={_lit(asset)} AND quantity={_lit(quantity)} "
            f"AND time >= {to_ns(start)} AND time < {to_ns(end)}"
        )
        if window_s is None:
            q = f"SELECT value FROM {TELEMETRY} WHERE {where}"
        else:
            q = (
                f"SELECT {aggregate}(value) FROM {TELEMETRY} WHERE {where} "
                f"GROUP BY time({int(window_s)}s) fill(none)"
            )
        samples = [
            Sample(time=from_ns(row[0]), value=float(row[1]))
            for series in self._influxql(q)
            for row in series["values"]
            if row[1] is not None
        ]
        return sorted(samples, key=lambda s: s.time)

    def latest(self, site: str, asset: str | None = None) -> list[Measurement]:
        where = f"site={_lit(site)}" + (f" AND asset={_lit(asset)}" if asset else "")
        q = (
            f"SELECT value, quality FROM {TELEMETRY} WHERE {where} "
            "GROUP BY * ORDER BY time DESC LIMIT 1"
        )
        newest: dict[tuple[str, str], Measurement] = {}
        for series in self._influxql(q):
            tags = series["tags"]
            t_ns, value, quality = series["values"][0]
            m = Measurement(
                site=tags["site"],
                asset=tags["asset"],
                quantity=tags["quantity"],
                unit=tags.get("unit", ""),
                value=value,
                time=from_ns(t_ns),
                quality=Quality(quality or "good"),
            )
            key = (m.asset, m.quantity)
            if key not in newest or newest[key].time < m.time:
                newest[key] = m
        return sorted(newest.values(), key=lambda m: (m.asset, m.quantity))

    def query_events(
        self,
        site: str,
        start: datetime,
        end: datetime,
        kind: str | None = None,
        asset: str | None = None,
    ) -> list[Event]:
        where = f"site={_lit(site)} AND time >= {to_ns(start)} AND time < {to_ns(end)}"
        if kind is not None:
            where += f" AND kind={_lit(kind)}"
        if asset is not None:
            where += f" AND asset={_lit(asset)}"
        q = f"SELECT message, data, kind, severity, asset FROM {EVENTS} WHERE {where}"
        events = []
        for series in self._influxql(q):
            for t_ns, message, data, kind_, severity, asset_ in series["values"]:
                events.append(
                    Event(
                        site=site,
                        kind=kind_,
                        severity=severity,
                        asset=asset_,
                        time=from_ns(t_ns),
                        message=message or "",
                        data=json.loads(data or "{}"),
                    )
                )
        return sorted(events, key=lambda e: e.time)

    def close(self) -> None:
        with self._lock:
            self._next_try = 0.0
            if not self._flush_locked():
                log.warning(
                    "%d points still buffered in %s; they are replayed on the next start",
                    self._spool.pending_points(),
                    self._spool.path,
                )
        self._http.close()
        self._spool.close()
