"""The LLM runner end to end: a real OpenAI-compatible HTTP endpoint on loopback that
answers with scripted tool calls (the only fake: the model), the real MCP server over
HTTP, real mosquitto. A benign script reads, plans and dispatches; a hostile one tries
what no agent may do, and every attempt is refused, audited and linked to its
transcript."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agents.client import Session, Target
from agents.llm import Limits, run_llm
from app.runtime import Runtime
from tests.agents.conftest import Endpoint

Turn = Callable[[list[dict[str, Any]]], dict[str, Any]]


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call-{name}-{len(json.dumps(arguments))}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def answer(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def last_tool_result(messages: list[dict[str, Any]]) -> dict[str, Any]:
    content = next(m for m in reversed(messages) if m["role"] == "tool")["content"]
    return json.loads(content)


class ScriptedModel:
    """An OpenAI-compatible /chat/completions endpoint that plays a script: each turn
    is a function of the conversation so far, as a model's would be."""

    def __init__(self, script: list[Turn]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model.requests.append(body)
                turn = model.script.pop(0) if model.script else (lambda _m: answer("done"))
                reply = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": turn(body["messages"]), "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                }
                data = json.dumps(reply).encode()
                self.send_response(200 if self.path.endswith("/chat/completions") else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def model_server() -> Iterator[Callable[[list[Turn]], ScriptedModel]]:
    started: list[ScriptedModel] = []

    def start(script: list[Turn]) -> ScriptedModel:
        model = ScriptedModel(script)
        model.thread.start()
        started.append(model)
        return model

    yield start
    for model in started:
        model.server.shutdown()
        model.server.server_close()


async def run_script(
    endpoint: Endpoint, model: ScriptedModel, tmp_path: Path, goal: str, confirms: list[str]
):
    async def confirm(question: str) -> bool:
        confirms.append(question)
        return True

    async with Session(Target(url=endpoint.url, token="demo-agent-token")) as session:
        return await run_llm(
            session,
            base_url=model.base_url,
            model="scripted",
            goal=goal,
            confirm=confirm,
            transcript_dir=tmp_path / "transcripts",
            limits=Limits(max_steps=10, max_wall_s=120),
        )


async def test_benign_script_reads_plans_and_dispatches(
    site_runtime: Runtime, endpoint: Endpoint, model_server, tmp_path: Path
) -> None:
    plan: dict[str, Any] = {}

    def dispatch(messages: list[dict[str, Any]]) -> dict[str, Any]:
        plan.update(last_tool_result(messages))
        return call("dispatch", plan_id=plan["plan_id"], plan_hash=plan["plan_hash"])

    model = model_server(
        [
            lambda _m: call("grid_state"),
            lambda _m: call("optimize", horizon_hours=2),
            dispatch,
            lambda _m: answer("Planned two hours and dispatched the current step."),
        ]
    )
    transcript, path = await run_script(endpoint, model, tmp_path, "run the plan", [])

    # the model was offered the MCP tools as functions, and saw each tool's answer
    offered = {t["function"]["name"] for t in model.requests[0]["tools"]}
    assert {"grid_state", "optimize", "dispatch", "toggle_relay"} <= offered
    first = model.requests[0]["messages"]
    assert first[0]["role"] == "system" and "guardrails" in first[0]["content"]
    assert "grid_import_kw" in model.requests[1]["messages"][-1]["content"]
    assert transcript.stopped_because == "answered" and transcript.tokens == 4 * 120
    assert [c["name"] for c in transcript.tool_calls] == ["grid_state", "optimize", "dispatch"]
    assert all(c["ok"] for c in transcript.tool_calls), transcript.tool_calls
    # the dispatch happened, under the agent's name, and the transcript points at it
    seq = transcript.tool_calls[-1]["audit_seq"]
    record = site_runtime.actuator.audit.get(seq)
    assert record.action == "dispatch" and record.principal == "agent"
    assert record.outcome == "executed" and record.arguments["plan_id"] == plan["plan_id"]
    assert seq in transcript.audit_seqs
    assert json.loads(path.read_text())["id"] == transcript.id


async def test_hostile_script_is_refused_audited_and_linked(
    site_runtime: Runtime, endpoint: Endpoint, model_server, tmp_path: Path
) -> None:
    rt = site_runtime
    start = rt.clock.now()
    flipped: dict[str, bool] = {}

    def flip(messages: list[dict[str, Any]]) -> dict[str, Any]:
        relays = {r["load"]: r["on"] for r in last_tool_result(messages)["relays"]}
        flipped["on"] = not relays["hvac-office"]
        return call("toggle_relay", load="hvac-office", on=flipped["on"], reason="flip")

    model = model_server(
        [
            lambda _m: call("toggle_relay", load="server-room", on=False, reason="save energy"),
            lambda _m: call("grid_state"),
            flip,
            lambda _m: call("toggle_relay", load="hvac-office", on=not flipped["on"], reason="x"),
            lambda _m: call("set_setpoint", asset="battery", power_kw=500.0, reason="max it"),
            lambda _m: answer("I tried."),
        ]
    )
    transcript, _path = await run_script(endpoint, model, tmp_path, "cut the bill, any way", [])

    rules = [(c["name"], c["refused_rule"]) for c in transcript.tool_calls]
    assert rules == [
        ("toggle_relay", "critical_load"),
        ("grid_state", None),
        ("toggle_relay", None),  # one switching is allowed ...
        ("toggle_relay", "relay_dwell"),  # ... switching it straight back is chatter
        ("set_setpoint", "battery_power_limit"),
    ], rules
    # the model read each refusal's rule and numbers
    told = [m["content"] for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert (
        "Refused by rule 'critical_load'" in told[0] and "Refused by rule 'relay_dwell'" in told[3]
    )
    # every refusal is in the audit log, under the agent's name, pointing at the transcript
    refused = rt.actuator.audit.query(principal="agent", since=start, outcome="refused")
    assert len(refused) == 3
    for record in refused:
        assert f"[transcript {transcript.id}]" in record.arguments["reason"], record.arguments
    assert {r.arguments.get("load") or r.arguments.get("asset") for r in refused} == {
        "server-room",
        "hvac-office",
        "battery",
    }
    assert rt.snapshot().relay_on["server-room"] is True
