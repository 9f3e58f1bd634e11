"""Bringing a site's own data: a CSV imported through the CLI, trained on, planned
from, and run through the closed loop, as a new user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from grid.config import load_site
from grid.dataset import read_site_csv
from grid.errors import ConfigError
from grid.profiles import generate

ROOT = Path(__file__).parents[2]
METERED = ROOT / "examples" / "metered-site.toml"
START = datetime(2026, 3, 2, 8, tzinfo=UTC)  # 00:00 in Los Angeles
DAYS = 10


def gridpilot(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grid", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "250"},
    )


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    text = METERED.read_text()
    text = text.replace('"sqlite:///../var/metered-campus.db"', f'"sqlite:///{tmp_path}/s.db"')
    text = text.replace('"../var/metered-campus"', f'"{tmp_path}/state"')
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    """A meter export as they come: its own column names, PV in W, the building as
    energy per hour, naive local times, one row twice and one missing."""
    site = load_site(METERED)
    truth = generate(site, START, DAYS * 24, seed=3)
    local = [t.astimezone(site.site.tz).replace(tzinfo=None) for t in truth.times]
    frame = pd.DataFrame(
        {
            "Timestamp": [t.isoformat() for t in local],
            "Main [kWh]": truth.load_kw["building"],
            "Roof PV [W]": truth.pv_kw["pv"] * 1000,
            "Day-ahead [EUR/MWh]": truth.import_price_eur_per_kwh * 1000,
        }
    )
    frame = pd.concat([frame.iloc[:50], frame.iloc[49:60], frame.iloc[61:]])
    path = tmp_path / "meter.csv"
    frame.to_csv(path, index=False)
    return path


MAP = [
    "--map", "Main [kWh]=building:kWh",
    "--map", "Roof PV [W]=pv:W",
    "--map", "Day-ahead [EUR/MWh]=import_price:EUR/MWh",
    "--time-column", "Timestamp",
    "--tz", "America/Los_Angeles",
]  # fmt: skip


def test_a_csv_imported_through_the_cli_is_trained_on_planned_from_and_run_in_closed_loop(
    site_file: Path, csv_file: Path
) -> None:
    first = gridpilot("data", "import", str(csv_file), "--site", str(site_file), *MAP, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(first.stdout)
    assert report["rows"] == DAYS * 24 and report["duplicates"] == 1 and report["gaps"] == 1
    assert report["time_zone"] == "America/Los_Angeles"
    assert report["new_points"] == report["points"] > 0
    again = gridpilot("data", "import", str(csv_file), "--site", str(site_file), *MAP, "--json")
    assert json.loads(again.stdout)["new_points"] == 0  # the same file twice adds nothing

    window = ["--start", "2026-03-02T00:00", "--end", "2026-03-11T00:00"]
    trained = gridpilot(
        "forecast", "train", "--site", str(site_file), "--target", "load",
        "--target", "pv", "--source", "store", *window,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    planned = gridpilot(
        "optimize", "plan", "--site", str(site_file), "--at", "2026-03-11T00:00", "--hours", "12"
    )
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert "load: xgboost" in planned.stderr and "status optimal" in planned.stdout

    exported = site_file.parent / "out.csv"
    out = gridpilot(
        "data", "export", str(exported), "--site", str(site_file),
        "--start", "2026-03-02T00:00", "--end", "2026-03-12T00:00",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    back = pd.read_csv(exported)
    assert {"building", "pv", "import_price"} <= set(back.columns)

    loop = gridpilot(
        "optimize", "closed-loop", "--site", str(site_file), "--data", str(csv_file), *MAP,
        "--train-days", "4", "--days", "0.5", "--horizon-hours", "4", "--json",
    )  # fmt: skip
    assert loop.returncode == 0, loop.stderr[-2000:]
    rows = {r["controller"].split(" (")[0]: r for r in json.loads(loop.stdout)}
    assert set(rows) == {
        "no control",
        "threshold rule",
        "MPC, gridpilot forecasts",
        "MPC, perfect forecast",
        "perfect-foresight optimum",
    }
    for r in rows.values():
        assert set(r) >= {
            "total_eur", "energy_eur", "demand_eur", "peak_import_kw",
            "import_limit_breaches", "days_below_soc_floor", "pf_saving_share",
        }  # fmt: skip
    assert rows["no control"]["pf_saving_share"] == 0
    assert rows["perfect-foresight optimum"]["pf_saving_share"] == 1
    assert rows["MPC, perfect forecast"]["total_eur"] < rows["no control"]["total_eur"]


def test_a_column_in_the_wrong_unit_or_zone_is_refused_naming_it(
    tmp_path: Path, csv_file: Path
) -> None:
    site = load_site(METERED)
    with pytest.raises(ConfigError, match=r"Roof PV .W.*is it in W"):
        read_site_csv(
            csv_file, site, {"Roof PV [W]": ("pv", "kW"), "Main [kWh]": ("building", "kWh")},
            time_column="Timestamp",
        )  # fmt: skip
    skipped = tmp_path / "dst.csv"
    skipped.write_text("time,building\n2026-03-08T01:30,5\n2026-03-08T02:30,5\n")
    with pytest.raises(ConfigError, match="does not exist in America/Los_Angeles"):
        read_site_csv(skipped, site)
    with pytest.raises(ConfigError, match="'sun' is not a load, PV"):
        read_site_csv(csv_file, site, {"Roof PV [W]": ("sun", None)}, time_column="Timestamp")


def test_times_with_offsets_need_no_zone_and_land_in_utc(tmp_path: Path) -> None:
    site = load_site(METERED)
    path = tmp_path / "utc.csv"
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    rows = [f"{(t0 + timedelta(hours=h)).isoformat()},{h}" for h in range(3)]
    path.write_text("time,building\n" + "\n".join(rows) + "\n")
    data = read_site_csv(path, site)
    assert data.frame.index[0] == pd.Timestamp(t0)
    assert data.report.time_zone == "offsets in the file"
