"""The CLI as a user runs it: a subprocess of the installed `gridpilot` script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grid", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "config" in result.stdout and "demo" in result.stdout


def test_config_check_accepts_the_example() -> None:
    result = run("config", "check", "examples/site.toml")
    assert result.returncode == 0, result.stderr
    assert "riverside-depot" in result.stdout and "gas-peaker" in result.stdout


def test_config_check_reports_a_broken_file_on_stderr_with_exit_2(tmp_path: Path) -> None:
    text = (ROOT / "examples/site.toml").read_text()
    bad = tmp_path / "site.toml"
    bad.write_text(text.replace("import_limit_kw = 60.0", "import_limit_kw = -5"))
    result = run("config", "check", str(bad))
    assert result.returncode == 2
    assert "grid.import_limit_kw = -5: Input should be greater than 0" in result.stderr
    assert result.stdout == ""
