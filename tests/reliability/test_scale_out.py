"""Several gateways on one Mosquitto through `$share/gridpilot/...`, 1,000 devices."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.scale import run_scale_out


def test_gateways_split_1000_devices_and_a_killed_one_loses_nothing(
    mosquitto, influxd, tmp_path: Path
) -> None:
    result = run_scale_out(
        tmp_path,
        mosquitto.port,
        mosquitto.url,
        f"influxdb://127.0.0.1:{influxd.http_port}",
        influxd.base_url,
        devices=1_000,
        rounds_per_phase=1,
    )
    assert result.sent == 4_000
    assert result.lost == 0
    assert result.stored == 4_000
    # Each gateway took a share of the telemetry (gw-1 across its two lives).
    assert all(n > 0 for n in result.shares.values()), result.shares
