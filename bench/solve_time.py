"""MILP solve time for 96, 288 and 2,016 steps (1, 3 and 21 days at 15 min) with CBC and
HiGHS, in one run.

Run as `python -m bench.solve_time` (or `make bench`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench._report import p50_p95, report
from grid.config import load_site
from grid.profiles import generate
from optimization.inputs import initial_state, inputs_from_profiles
from optimization.solve import plan

SITE = load_site(Path(__file__).parents[1] / "examples" / "site.toml")
CASES = [(96, 5), (288, 3), (2016, 1)]  # steps, repeats (different seeds)
TIME_LIMIT_S = 120


def main() -> None:
    rows = []
    for steps, repeats in CASES:
        for solver in ("cbc", "highs"):
            times, statuses = [], []
            for seed in range(repeats):
                inputs = inputs_from_profiles(
                    SITE,
                    generate(SITE, datetime(2026, 6, 1, tzinfo=UTC), steps, seed=seed),
                    initial_state(SITE),
                )
                made = plan(SITE, inputs, solver=solver, time_limit_s=TIME_LIMIT_S)
                times.append(made.solve_time_s)
                statuses.append(made.status)
            p50, p95 = p50_p95(times)
            rows.append(
                [
                    str(steps),
                    solver,
                    str(repeats),
                    f"{p50:.2f}",
                    f"{p95:.2f}",
                    ", ".join(sorted(set(statuses))),
                ]
            )
    report(
        "solve_time",
        "MILP solve time (s), example site at 15-min steps",
        ["steps", "solver", "runs", "p50 s", "p95 s", "status"],
        rows,
        [
            f"Time limit {TIME_LIMIT_S} s; 'feasible' means the limit stopped the search with "
            "an integer-feasible plan. Runs use different profile seeds."
        ],
    )


if __name__ == "__main__":
    main()
