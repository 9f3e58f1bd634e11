"""Running a PuLP problem on CBC or HiGHS, with solver output kept off stdout."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import pulp

Solver = Literal["cbc", "highs"]


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr for a while.

    highspy prints its banner straight to fd 1 even with msg=False; on the stdio MCP
    transport fd 1 carries the protocol, so one stray line would break the session."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def make_solver(solver: Solver, time_limit_s: float) -> pulp.LpSolver:
    if solver == "cbc":
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=1e-4)
    if solver == "highs":
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s, gapRel=1e-4)
    raise ValueError(f"solver {solver!r}: use 'cbc' or 'highs'")


def run(prob: pulp.LpProblem, solver: Solver, time_limit_s: float) -> tuple[int, float]:
    """Solve; returns PuLP's solution status (`sol_status`, not the status string, which
    says Optimal even when the time limit stopped the search) and the wall time."""
    start = time.perf_counter()
    with stdout_to_stderr():
        prob.solve(make_solver(solver, time_limit_s))
    return prob.sol_status, time.perf_counter() - start
