"""Figures the reliability tests hand to `bench/reliability.py` (when it runs them)."""

from __future__ import annotations

import json
import os


def record(name: str, **figures: float | int | str) -> None:
    """Append one line of figures to $GRIDPILOT_RELIABILITY_REPORT, if set."""
    path = os.environ.get("GRIDPILOT_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"name": name, **figures}) + "\n")


def examples(default: int) -> int:
    """How many fuzz examples to run: the bench asks for more than the test suite."""
    return int(os.environ.get("GRIDPILOT_FUZZ_EXAMPLES", default))
