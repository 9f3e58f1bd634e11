"""Printing a benchmark's table and keeping it in bench/results/NAME.md."""

from __future__ import annotations

import contextlib
import math
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path

import psutil  # arrives with amqtt
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"


def report(
    name: str, title: str, columns: list[str], rows: list[list[str]], notes: list[str] = ()
) -> None:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    for note in notes:
        print(note)
    RESULTS.mkdir(exist_ok=True)
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(row) + " |\n" for row in rows)
    machine = (
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    )
    text = (
        f"# {title}\n\nMeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}.\n\n"
        f"{header}{body}\n" + "".join(f"{n}\n\n" for n in notes)
    )
    (RESULTS / f"{name}.md").write_text(text)


def p50_p95(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (nearest rank, so with few samples it is the largest)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return statistics.median(ordered), ordered[rank - 1]


def cpu_s() -> float:
    """CPU seconds used so far by this process and its children (Mosquitto, influxd):
    unlike wall time, barely moved by other work on a shared machine."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    return total
