"""docker-compose.yml, the Dockerfile and deploy/ hold together (no Docker engine here):
services, images, ports, volumes, the environment the code reads, the site file
setup.sh writes, and Grafana queries that name what the gateway writes and run on a
real influxd."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
import yaml

from edge.mapping import site_map
from edge.sim import SiteSimulator
from grid.clock import SimClock
from grid.config import load_site
from grid.store import open_store
from grid.store.influx import event_line, measurement_line
from grid.telemetry import Event, Severity
from guardrails.principals import caller_for_token
from tests.deploy.test_mosquitto_acl import read_env, run_setup
from tests.services.influxd import InfluxServer

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
GRIDPILOT = [name for name, s in SERVICES.items() if s.get("image") == "gridpilot:latest"]
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/gridpilot.json").read_text())
DATASOURCE = yaml.safe_load(
    (ROOT / "deploy/grafana/provisioning/datasources/influxdb.yaml").read_text()
)["datasources"][0]
PACKAGES = ("grid", "edge", "forecasting", "optimization", "guardrails", "tools")
PACKAGES += ("mcp_server", "agents", "dashboard", "app")


def env_vars_read_by_code() -> set[str]:
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            found |= set(re.findall(r'envvar="(GRIDPILOT_[A-Z_]+)"', text))
            found |= set(re.findall(r'environ(?:\.get)?[\[(]"(GRIDPILOT_[A-Z_]+)"', text))
    return found


def test_services_images_and_profiles() -> None:
    assert set(SERVICES) == {
        "influxdb",
        "mosquitto",
        "grafana",
        "gridpilot",
        "gateway",
        "simulator",
        "agent-grid-response",
        "agent-arbitrage",
        "agent-peak-shaver",
    }
    for name in ("influxdb", "mosquitto", "grafana"):
        image = SERVICES[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
    assert SERVICES["influxdb"]["image"].startswith("influxdb:1.")  # the v1 API the store speaks
    for name in GRIDPILOT:
        assert SERVICES[name]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["gridpilot"]' in dockerfile and "pip install" in dockerfile
    assert SERVICES["simulator"]["profiles"] == ["sim"]  # never beside real devices by default
    assert [n for n, s in SERVICES.items() if "profiles" in s] == ["simulator"]
    for name in ("influxdb", "mosquitto", "grafana", "gridpilot"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_ports_and_health_checks_match_what_listens() -> None:
    server = SERVICES["gridpilot"]
    assert "--port=8765" in server["command"]
    assert server["ports"] == ["8765:8765"]
    assert "http://127.0.0.1:8765/dashboard/" in " ".join(server["healthcheck"]["test"])
    assert "listener 1883" in (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert SERVICES["mosquitto"]["ports"] == ["1883:1883"]
    assert SERVICES["influxdb"]["ports"] == ["127.0.0.1:8086:8086"]  # not on the site network
    assert SERVICES["grafana"]["ports"] == ["3000:3000"]
    # every daemon reaches the server under a Host header the server accepts
    for name in GRIDPILOT:
        for arg in SERVICES[name]["command"]:
            if arg.startswith("--url="):
                host = urlsplit(arg.removeprefix("--url=")).netloc
                assert f"--allowed-host={host}" in server["command"], name


def test_volumes_exist_or_are_made_by_setup(tmp_path: Path) -> None:
    made_by_setup = {"deploy/secrets/site.toml", "deploy/secrets/passwd"}
    secrets = run_setup(tmp_path)
    assert {f"deploy/secrets/{p.name}" for p in secrets.iterdir()} >= made_by_setup
    named = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert target.startswith("/"), volume
            if source.startswith("./"):
                path = source.removeprefix("./")
                assert (ROOT / path).exists() or path in made_by_setup, f"{name}: {volume}"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
    # mosquitto finds its password and ACL files where compose mounts them
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    mounts = {v.split(":")[1] for v in SERVICES["mosquitto"]["volumes"]}
    assert "/mosquitto/secrets/passwd" in mounts
    for key in ("password_file", "acl_file"):
        path = re.search(rf"^{key} (\S+)$", conf, re.M).group(1)
        assert any(path == m or path.startswith(m + "/") for m in mounts), key


def test_environment_is_what_the_code_and_images_read(tmp_path: Path) -> None:
    read = env_vars_read_by_code()
    for name in GRIDPILOT:
        for var in SERVICES[name]["environment"]:
            if var.startswith("GRIDPILOT_"):
                assert var in read, f"{name}: the code reads no {var}"
    # every ${VAR} compose interpolates is written by setup.sh (or has a default)
    run_setup(tmp_path)
    written = set(read_env(tmp_path / ".env"))
    text = (ROOT / "docker-compose.yml").read_text()
    for var, default in re.findall(r"\$\{([A-Z_]+)(:-[^}]*)?", text):
        assert var in written or default, f"${{{var}}} is neither written by setup.sh nor defaulted"
    # the site file setup.sh writes is the given one (examples/site.toml), with new
    # tokens (the demo ones no longer open it), pointing at these services
    site = load_site(tmp_path / "secrets" / "site.toml")
    example = load_site(ROOT / "examples" / "site.toml")
    assert (site.site, site.assets, site.devices, site.tariff, site.policy) == (
        example.site,
        example.assets,
        example.devices,
        example.tariff,
        example.policy,
    )
    assert [p.name for p in site.principals] == [p.name for p in example.principals]
    assert caller_for_token(site, "demo-admin-token") is None
    assert site.settings.stdio_principal == example.settings.stdio_principal
    influx_env = SERVICES["influxdb"]["environment"]
    store = urlsplit(site.settings.store_url)
    assert (store.hostname, store.port) == ("influxdb", 8086)
    assert store.path == f"/{influx_env['INFLUXDB_DB']}"
    assert store.username == influx_env["INFLUXDB_USER"]
    assert store.password == read_env(tmp_path / ".env")["INFLUXDB_USER_PASSWORD"]
    broker = urlsplit(site.settings.broker_url)
    assert (broker.hostname, broker.port, broker.username) == ("mosquitto", 1883, "gateway")
    state_mounts = [v.split(":")[1] for v in SERVICES["gridpilot"]["volumes"]]
    assert str(site.settings.state_dir) in state_mounts
    # the daemons' tokens are those of principals in that file
    tokens = read_env(tmp_path / "secrets" / "tokens.env")
    for service, principal in [
        ("agent-grid-response", "grid-response"),
        ("agent-arbitrage", "arbitrage"),
        ("agent-peak-shaver", "peak-shaving"),
    ]:
        var = SERVICES[service]["environment"]["GRIDPILOT_TOKEN"].strip("${}").split(":")[0]
        caller = caller_for_token(site, tokens[var])
        assert caller is not None and caller.name == principal
        assert caller.role == example.principal(principal).role in ("agent", "daemon")
    # Grafana reads with the read-only user, whose password compose hands it
    assert DATASOURCE["url"] == "http://influxdb:8086"
    assert DATASOURCE["database"] == influx_env["INFLUXDB_DB"]
    assert DATASOURCE["user"] == influx_env["INFLUXDB_READ_USER"]
    password_var = DATASOURCE["secureJsonData"]["password"].lstrip("$")
    assert password_var in SERVICES["grafana"]["environment"]


def test_gridpilot_service_commands_exist() -> None:
    commands = set()
    for name in GRIDPILOT:
        words = [w for w in SERVICES[name]["command"] if not w.startswith("-")]
        commands.add(tuple(words[:2]))
    for words in sorted(commands):
        if words[0] == "agent" and not (ROOT / "agents" / "daemon.py").exists():
            continue  # `gridpilot agent run` arrives with the agents branch
        result = subprocess.run(
            [sys.executable, "-m", "grid", *words, "--help"], capture_output=True, text=True
        )
        assert result.returncode == 0, f"gridpilot {' '.join(words)}: {result.stderr[-2000:]}"


def gateway_writes(site_file: Path) -> tuple[list[str], list[str]]:
    """Line protocol exactly as the gateway writes it for a step of the simulated site,
    and an event line (the gateway writes events for offline devices, gaps, anomalies)."""
    site = load_site(site_file)
    clock = SimClock(start=datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5))
    simulator = SiteSimulator(site, clock, None)
    mapping = site_map(site)
    lines = []
    for device, values in simulator.step().items():
        lines += [measurement_line(m) for m in mapping.measurements(device, values, clock.now())]
    event = Event(
        site=site.site.name,
        kind="offline",
        time=clock.now(),
        asset="battery",
        severity=Severity.WARNING,
        message="bess-1 went offline",
    )
    return lines, [event_line(event)]


def parse_line(line: str) -> tuple[str, dict[str, str], set[str]]:
    """(measurement, tags, field keys) of one line; ids never hold spaces, string
    field values may (quoted)."""
    head, rest = line.split(" ", 1)
    measurement, *tags = head.split(",")
    fields = re.findall(r'(?:^|,)(\w+)=(?:"(?:[^"\\]|\\.)*"|[^,\s]+)', rest)
    return measurement, dict(t.split("=", 1) for t in tags), set(fields)


def grafana_queries() -> list[str]:
    queries = [t["query"] for p in DASHBOARD["panels"] for t in p["targets"]]
    queries += [v["query"] for v in DASHBOARD["templating"]["list"]]
    return queries


def test_grafana_queries_name_what_the_gateway_writes() -> None:
    lines, events = gateway_writes(ROOT / "examples" / "site.toml")
    schema: dict[str, tuple[set[str], set[str]]] = {}
    series: set[tuple[str, str]] = set()
    for line in lines + events:
        measurement, tags, fields = parse_line(line)
        tag_keys, field_keys = schema.setdefault(measurement, (set(), set()))
        tag_keys |= set(tags)
        field_keys |= fields
        if "quantity" in tags:
            series.add((tags["asset"], tags["quantity"]))
    assets = {a for a, _ in series}
    quantities = {q for _, q in series}
    assert len(grafana_queries()) >= 8
    for query in grafana_queries():
        measurement = re.search(r'FROM "(\w+)"', query).group(1)
        assert measurement in schema, query
        tags, fields = schema[measurement]
        for name in re.findall(r'"(\w+)"', query):
            assert name in tags | fields | {measurement}, f"{name!r} is written by no one: {query}"
        for key, value in re.findall(r"\"(\w+)\" = '([^']+)'", query):
            known = {"asset": assets, "quantity": quantities}[key]
            assert value in known, f"{key} = {value!r} is written by no one: {query}"


def test_grafana_queries_return_rows_on_influxd(influxd: InfluxServer) -> None:
    """Every panel's InfluxQL runs on a real influxd holding what the gateway writes,
    and finds data: a query that parses but matches nothing would draw an empty panel."""
    lines, events = gateway_writes(ROOT / "examples" / "site.toml")
    store = open_store(influxd.url("grafana_check"))
    store.close()  # created the database
    body = "\n".join(lines + events)
    written = httpx2.post(
        f"{influxd.base_url}/write", params={"db": "grafana_check"}, content=body, timeout=10
    )
    assert written.status_code == 204, written.text
    site_name = load_site(ROOT / "examples" / "site.toml").site.name
    for query in grafana_queries():
        influxql = (
            query.replace("/^$site$/", f"/^{site_name}$/")
            .replace("$timeFilter", "time > now() - 1h")
            .replace("$__interval", "1m")
        )
        answer = httpx2.get(
            f"{influxd.base_url}/query",
            params={"db": "grafana_check", "q": influxql},
            timeout=10,
        ).json()
        result = answer["results"][0]
        assert "error" not in result, f"{influxql}: {result['error']}"
        assert result.get("series"), f"no rows: {influxql}"


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDPILOT_SITE", raising=False)


def test_setup_refuses_to_overwrite_secrets(tmp_path: Path) -> None:
    run_setup(tmp_path)
    again = subprocess.run(
        ["bash", str(ROOT / "deploy" / "setup.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "SECRETS": str(tmp_path / "secrets"),
            "ENV_FILE": str(tmp_path / ".env"),
        },
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "exist already" in again.stderr
