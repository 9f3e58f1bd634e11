"""Points/s into SQLiteStore and InfluxStore, beside raw line-protocol POSTs to the
same influxd in the same run (the ceiling an adapter can reach).

Run as `python -m bench.store_ingest` (or `make bench`)."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2

from bench._report import report
from grid.store.influx import InfluxStore, measurement_line
from grid.store.sqlite import SQLiteStore
from grid.telemetry import Measurement
from tests.services.influxd import start_influx

BATCH = 1_000
BATCHES = 40
REPEATS = 3
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def batches(offset: int) -> list[list[Measurement]]:
    """1,000 devices x 40 time steps, one point each: the shape of a gateway flush."""
    return [
        [
            Measurement(
                site="bench",
                asset=f"dev-{d:04d}",
                quantity="power_kw",
                unit="kW",
                value=float(d + step),
                time=T0 + timedelta(seconds=offset + step),
            )
            for d in range(BATCH)
        ]
        for step in range(BATCHES)
    ]


def rate(write, data) -> float:
    start = time.perf_counter()
    for batch in data:
        write(batch)
    return BATCH * BATCHES / (time.perf_counter() - start)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = start_influx(root / "influxd")
        try:
            influx = InfluxStore.from_url(server.url("bench"), spool_dir=root)
            sqlite = SQLiteStore(root / "bench.db")
            http = httpx2.Client(base_url=server.base_url, timeout=30)

            def raw_post(body: str) -> None:
                response = http.post(
                    "/write", params={"db": "bench", "precision": "ns"}, content=body.encode()
                )
                response.raise_for_status()

            results: dict[str, list[float]] = {"raw": [], "influx": [], "sqlite": []}
            for r in range(REPEATS):
                # Each contender writes fresh timestamps, so none overwrites another's.
                base = r * 10_000
                bodies = ["\n".join(measurement_line(p) for p in b) for b in batches(base)]
                results["raw"].append(rate(raw_post, bodies))
                results["influx"].append(rate(influx.write, batches(base + 1_000)))
                results["sqlite"].append(rate(sqlite.write, batches(base + 2_000)))
            influx.close()
            sqlite.close()
        finally:
            server.stop()

    ceiling = statistics.median(results["raw"])
    rows = []
    for name, label in [
        ("raw", "raw line-protocol POST (pre-built body)"),
        ("influx", "InfluxStore.write (line protocol + POST)"),
        ("sqlite", "SQLiteStore.write (WAL)"),
    ]:
        median = statistics.median(results[name])
        rows.append([label, f"{median:,.0f}", f"{median / ceiling:.2f}"])
    report(
        "store_ingest",
        "Store ingest: points/s, batches of 1,000 (median of 3)",
        ["writer", "points/s", "ratio to raw influx POST"],
        rows,
        [
            f"{BATCH * BATCHES:,} points per run; influxd 1.x on loopback, same run. "
            "The raw row sends bodies built beforehand, so it is the HTTP+database ceiling; "
            "the InfluxStore row includes building line protocol (series keys escaped by "
            "influxdb-client's Point once per series, then one string format per point).",
            "Target (issue 16): InfluxStore.write >= 0.70 of the raw POST.",
        ],
    )


if __name__ == "__main__":
    main()
