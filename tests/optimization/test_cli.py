"""`gridpilot optimize closed-loop` as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_closed_loop_prints_every_controller_ranked_against_perfect_foresight() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "grid", "optimize", "closed-loop", "--days", "0.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shares = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 8 and cells[-1].endswith("%"):
            shares[cells[0]] = int(cells[-1].rstrip("%"))
    assert set(shares) == {
        "no control",
        "rule-based",
        "MPC, seasonal-naive forecast",
        "MPC, noise-free forecast",
        "MPC, perfect foresight",
    }, done.stdout
    assert shares["no control"] == 0 and shares["MPC, perfect foresight"] == 100
    assert shares["MPC, noise-free forecast"] > shares["MPC, seasonal-naive forecast"]


def test_closed_loop_refuses_a_period_out_of_range() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "grid", "optimize", "closed-loop", "--days", "40"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert done.returncode == 2
    assert "--days" in done.stderr and "31" in done.stderr
