"""`config check` on malformed site files: one clear line per problem, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grid.config import load_site
from grid.errors import ConfigError
from tests.edge.conftest import EXAMPLE

GOOD = EXAMPLE.read_text()


def edited(old: str, new: str, count: int = 1) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, count)


# name -> (file content as text or bytes, a fragment each reported line must hold)
CASES: dict[str, tuple[str | bytes, list[str]]] = {
    "toml syntax": (GOOD.replace("[grid]", "[grid", 1), ["not valid TOML", "line"]),
    "empty file": ("", ["site: required field is missing", "grid: required", "tariff: required"]),
    "missing section": (
        GOOD.replace("[tariff]", "[unused]", 1).split("[unused]")[0],
        ["tariff: required field is missing"],
    ),
    "negative capacity": (
        edited("capacity_kwh = 50.0", "capacity_kwh = -5.0"),
        ["assets.batteries[0].capacity_kwh = -5.0", "greater than 0"],
    ),
    "soc_min above soc_max": (
        edited("soc_min_fraction = 0.10", "soc_min_fraction = 0.99"),
        ["assets.batteries[0]", "soc"],
    ),
    "fraction above one": (
        edited("charge_efficiency = 0.95", "charge_efficiency = 1.5"),
        ["charge_efficiency = 1.5", "less than or equal to 1"],
    ),
    "peaker min above max": (edited("min_kw = 9.0", "min_kw = 90.0"), ["assets.peakers[0]"]),
    "duplicate device ids": (
        edited('id = "pv-inv-1"\nkind = "pv_inverter"', 'id = "bess-1"\nkind = "pv_inverter"'),
        ["devices must be unique; 'bess-1' appears twice"],
    ),
    "duplicate asset ids": (
        edited('id = "cold-store"', 'id = "server-room"'),
        ["assets must be unique; 'server-room' appears twice"],
    ),
    "channel conflict": (
        edited("channel = 2", "channel = 1"),
        ["share channel 1 of board 'relay-board-1'"],
    ),
    "channel beyond the board": (
        edited("channel = 4", "channel = 9"),
        ["channel = 9 exceeds the 4 channels"],
    ),
    "unknown key": (
        edited("capacity_kwh = 50.0", "capacity_kwh = 50.0\ncapacity_kWh = 50.0"),
        ["assets.batteries[0].capacity_kWh: unknown field"],
    ),
    "wrong type": (edited("step_s = 900", 'step_s = "fifteen minutes"'), ["site.step_s"]),
    "section of the wrong shape": (
        "grid = 5\n" + GOOD.replace("[grid]", "[grid_unused]", 1),
        ["grid = 5", "valid dictionary"],
    ),
    "infinite cost": (
        edited("fuel_cost_eur_per_kwh = 0.45", "fuel_cost_eur_per_kwh = inf"),
        ["fuel_cost_eur_per_kwh = inf", "finite"],
    ),
    "nan limit": (edited("import_limit_kw = 60.0", "import_limit_kw = nan"), ["import_limit_kw"]),
    "unknown device reference": (
        edited('device = "bess-1"', 'device = "bess-9"'),
        ["assets.batteries[battery].device = 'bess-9' names no device"],
    ),
    "reference to the wrong kind": (
        edited('device = "pv-inv-1"', 'device = "meter-1"'),
        ["must be a pv_inverter, but that device is a meter"],
    ),
    "unknown time zone": (
        edited('timezone = "Europe/Berlin"', 'timezone = "Europe"'),
        ["site.timezone"],
    ),
    "bad store url": (
        edited('store_url = "sqlite:///../var/gridpilot.db"', 'store_url = "postgres://x"'),
        ["settings.store_url", "must start with sqlite:///"],
    ),
    "bad ingest limits": (
        GOOD + "\n[ingest]\nlimits = { power_kw = [10.0, -10.0] }\n",
        ["ingest.limits", "low <= high"],
    ),
    "several problems at once": (
        edited('id = "cold-store"', 'id = "server-room"').replace("channel = 3", "channel = 4"),
        ["assets must be unique", "share channel 4"],
    ),
    "binary": (bytes(range(256)) * 4, ["not UTF-8 text"]),
    "utf-16": (GOOD.encode("utf-16"), ["UTF-16 text"]),
    "nul bytes": (GOOD.encode() + b"\x00\x00", ["NUL bytes"]),
}


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "site.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_site_file_gives_one_line_per_problem(tmp_path: Path, case: str) -> None:
    content, fragments = CASES[case]
    with pytest.raises(ConfigError) as raised:
        load_site(write(tmp_path, content))
    message = str(raised.value)
    lines = message.splitlines()
    for fragment in fragments:
        assert any(fragment in line for line in lines), f"{fragment!r} not in:\n{message}"
    # "N problem(s)" heads a list that has exactly N lines below it.
    if "problem(s)" in lines[0]:
        assert int(lines[0].split(": ")[-1].split()[0]) <= len(lines) - 1


def test_a_directory_or_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_site(tmp_path)
    with pytest.raises(ConfigError, match="no such site file"):
        load_site(tmp_path / "absent.toml")


@pytest.mark.parametrize("case", ["binary", "utf-16", "several problems at once"])
def test_config_check_command_prints_the_problem_not_a_traceback(tmp_path: Path, case: str) -> None:
    path = write(tmp_path, CASES[case][0])
    result = subprocess.run(
        [sys.executable, "-m", "grid", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert all(f in result.stderr for f in CASES[case][1])
