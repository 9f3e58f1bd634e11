"""Start-up stays light: the stdio entry point and the server load no solver, model or
data-frame library until a tool needs one (Claude Desktop starts the server each time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("xgboost", "pulp", "pandas", "sklearn", "highspy", "scipy")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


def test_the_stdio_entry_and_the_server_import_no_heavy_module() -> None:
    code = (
        "from grid.cli import _register_rooms\n"
        "_register_rooms()\n"  # every room's CLI, as `gridpilot mcp stdio` registers them
        "import mcp_server.server, app.runtime, guardrails.principals\n"
    )
    assert _loaded_after(code) == []


def test_the_first_forecast_and_plan_load_them() -> None:
    code = "import tools.plan\nimport optimization.solve, forecasting.service\n"
    assert {"pandas", "pulp", "xgboost"} <= set(_loaded_after(code))
