"""Running a PuLP problem on CBC or HiGHS, with solver output kept off stdout.

`solve` relaxes and rounds before it branches: the LP relaxation (every binary
continuous) bounds the best plan from below; the same LP with each binary rounded and
fixed is a plan. When that plan is within the horizon's gap of the bound it is proven
good enough at the price of two LPs; otherwise the MILP runs from the rounded plan (or
the caller's warm start). On the example site the rounded plan is within 0.02 % of
the MILP optimum and 0.2-0.5 % above the bound.

CBC runs as PuLP's bundled command (an MPS file and a subprocess); the log it writes
says how close to proven optimal a stopped search got. HiGHS runs in process: the
model goes to highspy once, in one `passModel` call as a row-wise sparse matrix with
the objective's constant (so its gap is relative to the plan's full cost), and the
relaxed, fixed and MILP solves change only integrality and bounds. (PuLP's own HiGHS
adapter adds one row per call and cannot warm start.)

Options depend on the horizon (`options_for`).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pulp

Solver = Literal["cbc", "highs"]
LONG_HORIZON_STEPS = 4 * 24 * 3  # three days at 15 min
# Half-on relays rounded down (shed) lost less than rounding at 0.5 on the example
# site's day plans (0.2-0.45 % above the bound against 0.25-0.97 %). A peaker the
# relaxation runs at all is rounded on (`round_up_from` 0): rounded off, the peak it
# shaved is paid at the full demand charge.
ROUND_UP_FROM = 0.7


@dataclass(frozen=True)
class Options:
    gap_rel: float  # stop when proven within this share of the plan's cost
    gap_abs_eur: float  # or within this many euros


@dataclass(frozen=True)
class Outcome:
    status: int  # PuLP's `sol_status` (see `run`)
    seconds: float
    gap: float | None  # relative gap proven when the search stopped; None if unknown


def options_for(steps: int) -> Options:
    """Up to three days ahead a plan is proven within 0.5 % of the best possible (half
    a euro on a 100-euro day: well inside what the load and PV forecasts can promise);
    beyond that, within 1 %."""
    if steps <= LONG_HORIZON_STEPS:
        return Options(gap_rel=0.005, gap_abs_eur=0.01)
    return Options(gap_rel=0.01, gap_abs_eur=0.01)


EXACT = Options(gap_rel=1e-4, gap_abs_eur=1e-4)


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


def run(
    prob: pulp.LpProblem,
    solver: Solver,
    time_limit_s: float,
    options: Options = EXACT,
    warm_start: bool = False,
) -> Outcome:
    """Solve as stated (branch and bound straight away); the status is PuLP's solution
    status (`sol_status`, not the status string, which says Optimal even when the time
    limit stopped the search). With `warm_start`, the variables' current values are the
    first incumbent the solver tries."""
    _check(solver)
    start = time.perf_counter()
    with stdout_to_stderr():
        if solver == "cbc":
            status, gap = _cbc(prob, time_limit_s, options, warm_start)
        else:
            model = _Highs(prob, time_limit_s, options)
            if warm_start:
                model.start_from(model.values())
            status, gap = model.solve()
    return Outcome(status, time.perf_counter() - start, gap)


def solve(
    prob: pulp.LpProblem,
    solver: Solver,
    time_limit_s: float,
    options: Options,
    warm_start: bool = False,
    round_up_from: dict[str, float] | None = None,
) -> Outcome:
    """Relax and round first, branch and bound only when that is not good enough.
    `round_up_from` maps a binary's name to the relaxed value from which it is rounded
    to 1 (ROUND_UP_FROM for any other)."""
    _check(solver)
    start = time.perf_counter()
    thresholds = round_up_from or {}

    def rounded(var: pulp.LpVariable) -> float:
        threshold = thresholds.get(var.name, ROUND_UP_FROM)
        return 1.0 if (var.varValue or 0.0) > max(threshold, 1e-6) - 1e-9 else 0.0

    with stdout_to_stderr():
        if solver == "cbc":
            status, gap = _cbc_rounded(prob, time_limit_s, options, warm_start, rounded)
        else:
            status, gap = _highs_rounded(prob, time_limit_s, options, warm_start, rounded)
    return Outcome(status, time.perf_counter() - start, gap)


def _check(solver: str) -> None:
    if solver not in ("cbc", "highs"):
        raise ValueError(f"solver {solver!r}: use 'cbc' or 'highs'")


def _good_enough(value: float, bound: float, options: Options) -> float | None:
    """The relative gap when it meets the options, else None."""
    gap = max(0.0, (value - bound) / max(abs(value), 1e-9))
    return gap if value - bound <= options.gap_abs_eur or gap <= options.gap_rel else None


# ---- CBC (a subprocess per solve) ----


def _cbc(
    prob: pulp.LpProblem, time_limit_s: float, options: Options, warm_start: bool
) -> tuple[int, float | None]:
    with tempfile.TemporaryDirectory(prefix="gridpilot-cbc-") as tmp:
        log = Path(tmp) / "cbc.log"
        prob.solve(
            pulp.PULP_CBC_CMD(
                msg=False,
                timeLimit=time_limit_s,
                gapRel=options.gap_rel,
                gapAbs=options.gap_abs_eur,
                warmStart=warm_start,
                logPath=str(log),
            )
        )
        text = log.read_text(errors="replace")
    found = re.search(r"^Gap:\s+([0-9.eE+-]+)", text, re.MULTILINE)
    gap = float(found.group(1)) if found else None
    if prob.sol_status == pulp.LpSolutionOptimal:
        return prob.sol_status, gap or 0.0
    return prob.sol_status, gap


def _cbc_rounded(
    prob: pulp.LpProblem,
    time_limit_s: float,
    options: Options,
    warm_start: bool,
    rounded_value: Callable[[pulp.LpVariable], float],
) -> tuple[int, float | None]:
    began = time.perf_counter()
    integers = [v for v in prob.variables() if v.cat == pulp.LpInteger]
    if not integers:
        return _cbc(prob, time_limit_s, options, False)
    given = [v.varValue for v in integers] if warm_start else None
    bounds = [(v.lowBound, v.upBound) for v in integers]
    rounded = None
    try:
        for v in integers:
            v.cat = pulp.LpContinuous
        status, _ = _cbc(prob, time_limit_s, options, False)
        if status == pulp.LpSolutionOptimal:
            bound = pulp.value(prob.objective)
            rounded = [rounded_value(v) for v in integers]
            for v, x in zip(integers, rounded, strict=True):
                v.lowBound = v.upBound = x
            status, _ = _cbc(prob, time_limit_s, options, False)
            if status == pulp.LpSolutionOptimal:
                gap = _good_enough(pulp.value(prob.objective), bound, options)
                if gap is not None:
                    return pulp.LpSolutionOptimal, gap
            else:
                rounded = None
    finally:
        for v, (low, high) in zip(integers, bounds, strict=True):
            v.cat = pulp.LpInteger
            v.lowBound, v.upBound = low, high
    first = given if given is not None and None not in given else rounded
    for v, x in zip(integers, first or [None] * len(integers), strict=True):
        v.varValue = x
    left = max(1.0, time_limit_s - (time.perf_counter() - began))
    return _cbc(prob, left, options, first is not None)


# ---- HiGHS (in process, one model) ----


class _Highs:
    """A PuLP problem passed to highspy once."""

    def __init__(self, prob: pulp.LpProblem, time_limit_s: float, options: Options) -> None:
        import highspy

        self.hs = highspy
        self.prob = prob
        self.began = time.perf_counter()
        self.time_limit_s = time_limit_s
        h = self.h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(time_limit_s))
        h.setOptionValue("mip_rel_gap", options.gap_rel)
        h.setOptionValue("mip_abs_gap", options.gap_abs_eur)
        # Measured on the example site's day plans: feasibility jump and restarts cost
        # more time than they save once a rounded or warm-started incumbent is given.
        h.setOptionValue("mip_heuristic_run_feasibility_jump", False)
        h.setOptionValue("mip_allow_restart", False)
        self.variables = variables = prob.variables()
        column = {id(v): j for j, v in enumerate(variables)}
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = len(variables)
        lp.num_row_ = len(prob.constraints)
        lp.col_cost_ = [prob.objective.get(v, 0.0) for v in variables]
        lp.col_lower_ = [-inf if v.lowBound is None else v.lowBound for v in variables]
        lp.col_upper_ = [inf if v.upBound is None else v.upBound for v in variables]
        lp.offset_ = prob.objective.constant
        self.integers = [j for j, v in enumerate(variables) if v.cat == pulp.LpInteger]
        self.mip = bool(self.integers)
        if self.integers:
            kind = highspy.HighsVarType
            lp.integrality_ = [
                kind.kInteger if v.cat == pulp.LpInteger else kind.kContinuous for v in variables
            ]
        starts, index, value, lower, upper = [0], [], [], [], []
        for row in prob.constraints.values():
            for var, coefficient in row.items():
                index.append(column[id(var)])
                value.append(coefficient)
            starts.append(len(index))
            low, high = row.getLb(), row.getUb()
            lower.append(-inf if low is None else low)
            upper.append(inf if high is None else high)
        lp.row_lower_, lp.row_upper_ = lower, upper
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = starts, index, value
        h.passModel(lp)

    def values(self) -> list[float | None]:
        return [v.varValue for v in self.variables]

    def start_from(self, values: list[Any]) -> None:
        known = [(j, x) for j, x in enumerate(values) if x is not None]
        if known:
            self.h.setSolution(len(known), [j for j, _ in known], [x for _, x in known])

    def set_integrality(self, integer: bool) -> None:
        kind = self.hs.HighsVarType.kInteger if integer else self.hs.HighsVarType.kContinuous
        n = len(self.integers)
        self.h.changeColsIntegrality(n, self.integers, [kind] * n)
        self.mip = integer

    def fix(self, values: list[float] | None) -> None:
        """Fix the integer columns to `values`, or give them back their bounds."""
        cols = self.integers
        if values is None:
            low = [self.variables[j].lowBound for j in cols]
            high = [self.variables[j].upBound for j in cols]
        else:
            low = high = values
        self.h.changeColsBounds(len(cols), cols, low, high)

    def solve(self) -> tuple[int, float | None]:
        """Run, copy the solution into the PuLP variables, return status and gap."""
        h, hs = self.h, self.hs
        left = self.time_limit_s - (time.perf_counter() - self.began)
        h.setOptionValue("time_limit", max(1.0, left))
        h.run()
        info = h.getInfo()
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if has_solution:
            for var, x in zip(self.variables, h.getSolution().col_value, strict=True):
                var.varValue = x
        status = h.getModelStatus()
        mip = self.mip
        if status == hs.HighsModelStatus.kOptimal:
            self.prob.sol_status = pulp.LpSolutionOptimal
            return self.prob.sol_status, info.mip_gap if mip else 0.0
        if status == hs.HighsModelStatus.kInfeasible:
            self.prob.sol_status = pulp.LpSolutionInfeasible
            return self.prob.sol_status, None
        self.prob.sol_status = (
            pulp.LpSolutionIntegerFeasible if has_solution else pulp.LpSolutionNoSolutionFound
        )
        return self.prob.sol_status, info.mip_gap if has_solution and mip else None

    def objective(self) -> float:
        return self.h.getInfo().objective_function_value


def _highs_rounded(
    prob: pulp.LpProblem,
    time_limit_s: float,
    options: Options,
    warm_start: bool,
    rounded_value: Callable[[pulp.LpVariable], float],
) -> tuple[int, float | None]:
    model = _Highs(prob, time_limit_s, options)
    if not model.integers:
        return model.solve()
    given = model.values() if warm_start else None
    rounded = None
    model.set_integrality(False)
    status, _ = model.solve()
    if status == pulp.LpSolutionOptimal:
        bound = model.objective()
        rounded = [rounded_value(model.variables[j]) for j in model.integers]
        model.fix(rounded)
        status, _ = model.solve()
        if status == pulp.LpSolutionOptimal:
            gap = _good_enough(model.objective(), bound, options)
            if gap is not None:
                return pulp.LpSolutionOptimal, gap
        else:
            rounded = None
        model.fix(None)
    model.set_integrality(True)
    if given is not None and any(given[j] is not None for j in model.integers):
        model.start_from(given)
    elif rounded is not None:
        known = dict(zip(model.integers, rounded, strict=True))
        model.start_from([known.get(j) for j in range(len(model.variables))])
    return model.solve()
