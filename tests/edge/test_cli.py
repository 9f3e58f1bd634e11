"""`gridpilot sim run / sim fault / state` as a user runs them, against Mosquitto."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from grid.store.sqlite import SQLiteStore

ROOT = Path(__file__).parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grid", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},  # a wide table stays on one line
    )


def site_file(tmp_path: Path) -> Path:
    text = (ROOT / "examples/site.toml").read_text()
    path = tmp_path / "site.toml"
    path.write_text(
        text.replace('"sqlite:///../var/gridpilot.db"', f'"sqlite:///{tmp_path}/cli.db"')
    )
    return path


def test_sim_run_takes_faults_from_the_cli_and_state_shows_devices(mosquitto, tmp_path) -> None:
    site = site_file(tmp_path)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grid",
            "sim",
            "run",
            "--site",
            str(site),
            "--broker",
            mosquitto.url,
            "--speed",
            "60",
            "--with-gateway",
            "--duration",
            "8",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(4)
        shown = cli("state", "--site", str(site), "--broker", mosquitto.url, "--wait", "1")
        assert shown.returncode == 0, shown.stderr
        for device in ("relay-board-1", "bess-1", "pv-inv-1", "meter-1", "peaker-1"):
            assert device in shown.stdout
        assert "offline" not in shown.stdout
        assert '"relays":[true,true,false,false]' in shown.stdout
        fault = cli(
            "sim",
            "fault",
            "voltage_sag",
            "--device",
            "meter-1",
            "--magnitude",
            "0.3",
            "--site",
            str(site),
            "--broker",
            mosquitto.url,
        )
        assert fault.returncode == 0, fault.stderr
        assert "injected voltage_sag on meter-1" in fault.stdout
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert "stopped after" in out
    store = SQLiteStore(tmp_path / "cli.db")
    now = datetime.now(UTC)
    volts = [
        s.value
        for s in store.query(
            "riverside-depot",
            "grid",
            "voltage_v",
            now - timedelta(hours=1),
            now + timedelta(hours=1),
        )
    ]
    store.close()
    assert any(v > 220 for v in volts) and any(v < 170 for v in volts)


def test_fault_for_an_unknown_device_is_refused_naming_the_field(mosquitto, tmp_path) -> None:
    result = cli(
        "sim",
        "fault",
        "stuck_sensor",
        "--device",
        "nope",
        "--site",
        str(site_file(tmp_path)),
        "--broker",
        mosquitto.url,
    )
    assert result.returncode == 2
    assert "fault.device = 'nope'" in result.stderr


def test_state_needs_an_external_broker(tmp_path) -> None:
    result = cli("state", "--site", str(site_file(tmp_path)))
    assert result.returncode == 2
    assert "settings.broker_url is 'embedded'" in result.stderr
