"""Faults, fuzzing and scale-out in one table: what was injected, what survived, and
what was lost, duplicated, bypassed or done without authority (goal: 0 for each).

Runs `tests/reliability` with more fuzz examples than the suite uses (each test hands
its figures over through $GRIDPILOT_RELIABILITY_REPORT), then the scale-out run with
more rounds: 1,000 devices, two gateway processes, then three, one killed and
restarted mid-run. Run as `python -m bench.reliability` (or `make bench`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from bench._report import report
from tests.reliability.scale import ScaleResult, run_scale_out
from tests.services.influxd import start_influx
from tests.services.mosquitto import MosquittoServer

FUZZ_EXAMPLES = 1_000
SCALE = [(1_000, 5), (2_000, 3)]  # devices, rounds per phase
# A killed gateway's share waits in its session at the broker; mosquitto keeps 1,000
# messages per client by default and drops the rest. Sized here for the outage.
BROKER_CONFIG = "max_queued_messages 1000000\n"
# Test files whose every case injects one fault (store, field, audit tampering).
FAULT_FILES = (
    "test_store_faults",
    "test_field_faults",
    "test_audit_tampering",
    "test_gateway_input",
)


def run_tests(root: Path) -> tuple[int, int, list[dict]]:
    figures = root / "figures.jsonl"
    junit = root / "junit.xml"
    env = {
        **os.environ,
        "GRIDPILOT_RELIABILITY_REPORT": str(figures),
        "GRIDPILOT_FUZZ_EXAMPLES": str(FUZZ_EXAMPLES),
        "GRIDPILOT_REQUIRE_SERVICES": "1",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/reliability",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not scale_out",
            f"--junitxml={junit}",
        ],
        env=env,
        check=False,
    )
    injected = survived = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        if any(name in case.get("classname", "") for name in FAULT_FILES):
            injected += 1
            survived += not any(c.tag in ("failure", "error") for c in case)
    lines = figures.read_text().splitlines() if figures.exists() else []
    return injected, survived, [json.loads(line) for line in lines]


def scale_out(root: Path) -> list[ScaleResult]:
    (root / "mosquitto").mkdir()
    broker = MosquittoServer(root / "mosquitto", extra_config=BROKER_CONFIG)
    broker.start()
    influxd = start_influx(root / "influxd")
    try:
        results = []
        for n, (devices, rounds) in enumerate(SCALE):
            run_root = root / f"run-{n}"
            run_root.mkdir()
            results.append(
                run_scale_out(
                    run_root,
                    broker.port,
                    broker.url,
                    f"influxdb://127.0.0.1:{influxd.http_port}",
                    influxd.base_url,
                    devices=devices,
                    rounds_per_phase=rounds,
                    database=f"scale{n}",
                )
            )
        return results
    finally:
        influxd.stop()
        broker.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        injected, survived, figures = run_tests(root)
        scale = scale_out(root)
    by_name = {f["name"]: f for f in figures}
    gw = by_name.get("fuzz_gateway", {})
    mcp = by_name.get("fuzz_mcp", {})
    missing = "n/a (test failed)"
    rows = [
        ["faults injected / survived", f"{injected} / {survived}", "every fault test case"],
        [
            "fuzz inputs tried",
            f"{gw.get('tried', 0) + mcp.get('tried', 0):,}",
            f"gateway {gw.get('tried', missing)}, MCP tools {mcp.get('tried', missing)}",
        ],
        [
            "crashes",
            str(gw.get("crashes", missing) if not mcp else gw.get("crashes", 0) + mcp["crashes"]),
            "gateway internal errors + MCP transport failures",
        ],
        [
            "points lost",
            str(sum(r.lost for r in scale)),
            "scale-out runs (QoS 1, persistent sessions, journal)",
        ],
        [
            "points duplicated",
            str(sum(r.duplicated for r in scale) + gw.get("leaked", 0)),
            "written twice, or stored from a refused message",
        ],
        [
            "duplicate actuations",
            "0" if survived == injected else "see failures",
            "broker restart under commands, request replay",
        ],
        [
            "guardrail bypasses",
            str(mcp.get("bypasses", missing)),
            "device commands without an audited ack",
        ],
        [
            "unauthorized actions",
            str(mcp.get("unauthorized", missing)),
            "acts by the fuzzed viewer",
        ],
    ]
    for r in scale:
        rows.append(
            [
                f"scale-out: {r.devices:,} devices, 2 -> 3 gateways, one killed",
                f"{r.messages_per_s:,.0f} msg/s, lost {r.lost}",
                f"{r.sent:,} sent, {r.stored:,} stored; shares "
                + ", ".join(f"{k} {v:,}" for k, v in r.shares.items()),
            ]
        )
    report(
        "reliability",
        "Reliability: faults, fuzzing and scale-out (goal 0 for lost .. unauthorized)",
        ["figure", "value", "what"],
        rows,
        [
            f"Fuzz examples per test: {FUZZ_EXAMPLES:,}. Scale-out: one Mosquitto, "
            "`gridpilot gateway run --shared-group gridpilot` processes writing to one "
            "influxd, QoS 1 telemetry from one light publisher; messages/s is the "
            "publisher's rate over the publishing phases (the broker's PUBACKs pace it).",
            "'duplicate actuations' comes from the fault tests that assert a device executed "
            "each command once (broker restart, request replay).",
        ],
    )


if __name__ == "__main__":
    main()
