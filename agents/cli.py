"""`gridpilot agent run|llm|list`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from grid.cli import console, err_console

agent_app = typer.Typer(
    help="Run the daemons and the LLM agent, each an MCP client under its own identity.",
    no_args_is_help=True,
)

# name -> (module, class, principal in the example site file, what it does)
DAEMONS: dict[str, tuple[str, str, str, str]] = {
    "grid-response": (
        "agents.grid_response",
        "GridResponse",
        "grid-response",
        "frequency out of band, steep ramp or import near the limit: battery, peaker, "
        "then shed by priority; restores with hysteresis (lease priority 80)",
    ),
    "arbitrage": (
        "agents.arbitrage",
        "Arbitrage",
        "arbitrage",
        "each plan step: forecast, optimize, dispatch; keeps a SoC reserve (priority 30)",
    ),
    "peak-shaver": (
        "agents.peak_shaver",
        "PeakShaver",
        "peak-shaving",
        "predicted peak over the threshold in the next hour: dispatch the plan with the "
        "fewest switchings, or the rule-based fallback (priority 60)",
    ),
}

Url = Annotated[
    str, typer.Option(help="The server's streamable-HTTP endpoint", envvar="GRIDPILOT_URL")
]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="GRIDPILOT_TOKEN", help="This agent's own bearer token (its principal's token)"
    ),
]
DEFAULT_URL = "http://127.0.0.1:8765/mcp"


def make_daemon(name: str, interval_s: float | None = None):
    import importlib

    if name not in DAEMONS:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(DAEMONS)}", param_hint="NAME")
    module, cls, _principal, _what = DAEMONS[name]
    daemon = getattr(importlib.import_module(module), cls)()
    if interval_s is not None:
        daemon.interval_s = interval_s
    return daemon


def _need_token(token: str | None) -> str:
    if not token:
        raise typer.BadParameter(
            "give the agent's bearer token (--token or $GRIDPILOT_TOKEN); the demo's are "
            "demo-<principal>-token",
            param_hint="--token",
        )
    return token


@agent_app.command("list")
def list_daemons() -> None:
    """The daemons this build runs and the principal each one acts as."""
    from rich.table import Table

    table = Table("daemon", "principal (example site)", "what it does")
    for name, (_m, _c, principal, what) in DAEMONS.items():
        table.add_row(name, principal, what)
    table.add_row("llm", "(the token's)", "an LLM tool-use loop: gridpilot agent llm --help")
    console.print(table)


@agent_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="grid-response, arbitrage or peak-shaver")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    dry_run: Annotated[bool, typer.Option(help="Decide and log, never act")] = False,
    once: Annotated[bool, typer.Option(help="One observe-decide-act cycle, then stop")] = False,
    interval_s: Annotated[
        float | None, typer.Option("--interval", min=0.1, help="Wall seconds between cycles")
    ] = None,
) -> None:
    """Run one daemon against a running server until Ctrl-C or SIGTERM (leases released
    on the way out). Each decision is logged with its reason and the tool's answer."""
    import logging

    import anyio

    from agents.client import Session, Target, until_signalled
    from agents.daemon import run as run_daemon

    daemon = make_daemon(name, interval_s)
    target = Target(url=url, token=_need_token(token))
    logging.getLogger("agents").setLevel(logging.INFO)

    async def main() -> None:
        async with Session(target) as session:
            await run_daemon(daemon, session, dry_run=dry_run, once=once)

    stopped = anyio.run(until_signalled, main)
    err_console.print(f"{name}: {'stopped by signal' if stopped else 'done'}")


@agent_app.command("llm")
def llm(
    goal: Annotated[str, typer.Option(help="What the agent should achieve, in plain words")],
    base_url: Annotated[
        str,
        typer.Option(
            help="OpenAI-compatible API base, e.g. http://127.0.0.1:11434/v1 (Ollama)",
            envvar="GRIDPILOT_LLM_BASE_URL",
        ),
    ],
    model: Annotated[str, typer.Option(help="Model name the endpoint knows")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the endpoint's API key, if any")
    ] = "OPENAI_API_KEY",
    max_steps: Annotated[int, typer.Option(min=1, max=200)] = 20,
    max_tokens: Annotated[int, typer.Option(min=100)] = 50_000,
    max_wall_s: Annotated[float, typer.Option(min=1)] = 300.0,
    transcripts: Annotated[Path, typer.Option(help="Directory for the transcripts")] = Path(
        "var/transcripts"
    ),
) -> None:
    """Let an LLM pursue a goal through the MCP tools, under its token's principal.
    Confirmations are asked here, at the terminal; the transcript is saved and linked
    from the audit records of its actions."""
    import anyio

    from agents.client import Session, Target
    from agents.llm import Limits, elicitation_handler, run_llm, terminal_confirm

    confirm = terminal_confirm(console)
    target = Target(url=url, token=_need_token(token))
    limits = Limits(max_steps=max_steps, max_tokens=max_tokens, max_wall_s=max_wall_s)

    async def main():
        options = {"elicitation_callback": elicitation_handler(confirm)}
        async with Session(target, client_options=options) as session:
            return await run_llm(
                session,
                base_url=base_url,
                model=model,
                goal=goal,
                confirm=confirm,
                transcript_dir=transcripts,
                limits=limits,
                api_key=os.environ.get(api_key_env),
            )

    transcript, path = anyio.run(main)
    for call in transcript.tool_calls:
        verdict = "ok" if call["ok"] else f"refused ({call['refused_rule'] or 'error'})"
        console.print(f"  {call['name']} {verdict}", markup=False, highlight=False)
    console.print(transcript.final_answer or f"(no answer: {transcript.stopped_because})")
    console.print(f"transcript {transcript.id}: {path} ({transcript.stopped_because})")


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
