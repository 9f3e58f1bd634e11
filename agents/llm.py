"""The LLM agent runner: a tool-use loop against any OpenAI-compatible endpoint.

It turns the server's MCP tools into chat-completions function schemas, sends the
system prompt (`prompts/agent/system.md`) and the goal, and runs each tool call the
model asks for through the MCP session, under limits on steps, tokens and wall time.
The model's own identity is the bearer token's principal, so every guardrail applies.

The whole conversation is saved as a transcript (JSON). Each action's `reason` (and a
lease's `purpose`) carries the transcript id, so the audit record of every action the
model asked for — done or refused — points at the conversation that led to it; the
transcript lists the audit records its actions produced. A confirmation the server
asks for (elicitation, or a needs_confirmation answer with a token) goes to the
person at the terminal, never to the model.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from mcp import types
from pydantic import BaseModel, Field

from agents.client import Session, ToolResult
from prompts import HERE as PROMPTS_DIR

log = logging.getLogger(__name__)

SYSTEM_PROMPT = PROMPTS_DIR / "agent" / "system.md"
# Arguments that reach the audit log verbatim: the transcript id rides along in them.
LINK_FIELDS = ("reason", "purpose")

Confirm = Callable[[str], Awaitable[bool]]


class Limits(BaseModel):
    max_steps: int = Field(20, ge=1, le=200, description="Model turns")
    max_tokens: int = Field(50_000, ge=100, description="Total tokens the endpoint reports")
    max_wall_s: float = Field(300.0, gt=0, description="Wall-clock seconds for the whole run")


class Transcript(BaseModel):
    id: str
    goal: str
    model: str
    base_url: str
    started_at: datetime
    messages: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []  # name, arguments, ok, answer, audit_seq
    audit_seqs: list[int] = []
    stopped_because: str = ""
    tokens: int = 0
    final_answer: str = ""

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.id}.json"
        path.write_text(self.model_dump_json(indent=2))
        return path


def function_schemas(tools: list[Any]) -> list[dict[str, Any]]:
    """MCP tools as chat-completions `tools` entries."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description or t.title or t.name,
                "parameters": t.input_schema or {"type": "object", "properties": {}},
            },
        }
        for t in tools
    ]


def link(arguments: dict[str, Any], schema: dict[str, Any], transcript_id: str) -> dict[str, Any]:
    """Tag the arguments the audit keeps with the transcript id."""
    out = dict(arguments)
    props = schema.get("properties", {})
    for name in LINK_FIELDS:
        if name in props:
            text = str(out.get(name) or "").strip() or "(no reason given)"
            out[name] = f"{text} [transcript {transcript_id}]"
    return out


def terminal_confirm(console: Any) -> Confirm:
    """Ask the person at the terminal (never the model)."""
    import anyio

    async def ask(question: str) -> bool:
        from rich.prompt import Confirm as RichConfirm

        return await anyio.to_thread.run_sync(
            lambda: RichConfirm.ask(f"[bold]confirm[/bold] {question}", console=console)
        )

    return ask


def elicitation_handler(confirm: Confirm):
    """An MCP elicitation callback that puts the server's question to `confirm`."""

    async def handle(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        yes = await confirm(params.message)
        return types.ElicitResult(action="accept", content={"confirm": yes})

    return handle


async def chat(
    http: httpx2.AsyncClient, base_url: str, body: dict[str, Any], api_key: str | None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = await http.post(
        base_url.rstrip("/") + "/chat/completions", json=body, headers=headers
    )
    response.raise_for_status()
    return response.json()


async def run_llm(
    session: Session,
    *,
    base_url: str,
    model: str,
    goal: str,
    confirm: Confirm,
    transcript_dir: Path,
    limits: Limits | None = None,
    api_key: str | None = None,
) -> tuple[Transcript, Path]:
    """Run the goal to an answer or a limit; returns the transcript and where it is."""
    limits = limits or Limits()
    started = time.monotonic()
    stamp = datetime.now(UTC)
    transcript = Transcript(
        id=f"llm-{stamp:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        goal=goal,
        model=model,
        base_url=base_url,
        started_at=stamp,
    )
    tools = await session.list_tools()
    schemas = {t.name: (t.input_schema or {}) for t in tools}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT.read_text()},
        {"role": "user", "content": goal},
    ]
    transcript.messages = messages
    try:
        async with httpx2.AsyncClient(timeout=120) as http:
            for _step in range(limits.max_steps):
                if time.monotonic() - started > limits.max_wall_s:
                    transcript.stopped_because = f"wall-time limit {limits.max_wall_s:g} s"
                    break
                if transcript.tokens >= limits.max_tokens:
                    transcript.stopped_because = f"token limit {limits.max_tokens}"
                    break
                body = {
                    "model": model,
                    "messages": messages,
                    "tools": function_schemas(tools),
                    "tool_choice": "auto",
                }
                reply = await chat(http, base_url, body, api_key)
                transcript.tokens += int((reply.get("usage") or {}).get("total_tokens") or 0)
                message = reply["choices"][0]["message"]
                messages.append(
                    {k: v for k, v in message.items() if k in ("role", "content", "tool_calls")}
                )
                asked = message.get("tool_calls") or []
                if not asked:
                    transcript.final_answer = message.get("content") or ""
                    transcript.stopped_because = "answered"
                    break
                for tool_call in asked:
                    content = await _run_call(session, tool_call, schemas, transcript, confirm)
                    messages.append(
                        {"role": "tool", "tool_call_id": tool_call["id"], "content": content}
                    )
            else:
                transcript.stopped_because = f"step limit {limits.max_steps}"
    finally:
        path = transcript.save(transcript_dir)
        log.info("transcript %s saved to %s", transcript.id, path)
    return transcript, path


async def _run_call(
    session: Session,
    tool_call: dict[str, Any],
    schemas: dict[str, dict[str, Any]],
    transcript: Transcript,
    confirm: Confirm,
) -> str:
    fn = tool_call.get("function") or {}
    name = fn.get("name", "")
    try:
        arguments = json.loads(fn.get("arguments") or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        return f"Invalid arguments for {name}: {exc}. Send a JSON object."
    if name not in schemas:
        return f"No tool named {name!r}; the tools are: {', '.join(sorted(schemas))}."
    arguments = link(arguments, schemas[name], transcript.id)
    result = await session.call(name, arguments)
    data = result.data or {}
    if result.ok and data.get("status") == "needs_confirmation":
        _note(transcript, name, arguments, result)
        if await confirm(str(data.get("summary", name))):
            result = await session.call(
                name, {**arguments, "confirmation_token": data["confirmation_token"]}
            )
        else:
            _note(transcript, name, arguments, result, "declined by the person at the terminal")
            return "The person at the terminal declined this action. Nothing was done."
    _note(transcript, name, arguments, result)
    if not result.ok:
        return result.text
    return json.dumps(result.data, default=str)[:20_000]


def _note(
    transcript: Transcript,
    name: str,
    arguments: dict[str, Any],
    result: ToolResult,
    answer: str | None = None,
) -> None:
    seq = (result.data or {}).get("audit_seq")
    if isinstance(seq, int) and seq not in transcript.audit_seqs:
        transcript.audit_seqs.append(seq)
    transcript.tool_calls.append(
        {
            "name": name,
            "arguments": arguments,
            "ok": result.ok,
            "refused_rule": result.refused_rule,
            "answer": answer or (result.text if not result.ok else "ok"),
            "audit_seq": seq,
        }
    )
