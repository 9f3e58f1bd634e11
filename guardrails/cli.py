"""`gridpilot audit ...`: the reviewer's view of the audit log."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from grid.cli import DEFAULT_SITE, SiteOption, console, err_console
from grid.config import load_site
from guardrails.audit import AuditLog, AuditRecord

audit_app = typer.Typer(help="Read and verify the audit log of every action.", no_args_is_help=True)


def _open(site_path) -> AuditLog:
    site = load_site(site_path)
    path = site.settings.state_dir / "audit.db"
    if not path.exists():
        err_console.print(f"no audit log yet at {path}")
        raise typer.Exit(1)
    return AuditLog(path)


def _table(records: list[AuditRecord]) -> Table:
    table = Table("#", "time (UTC)", "principal", "action", "outcome", "detail")
    colour = {
        "executed": "green",
        "refused": "red",
        "failed": "red",
        "awaiting_confirmation": "yellow",
    }
    for r in records:
        style = colour.get(r.outcome, "")
        table.add_row(
            str(r.seq),
            f"{r.time:%Y-%m-%d %H:%M:%S}",
            f"{r.principal} ({r.role})",
            r.action,
            f"[{style}]{r.outcome}[/{style}]" if style else r.outcome,
            r.detail[:120],
        )
    return table


@audit_app.command("tail")
def tail(
    site_path: SiteOption = DEFAULT_SITE,
    n: Annotated[int, typer.Option("-n", min=1, max=10_000, help="How many")] = 20,
) -> None:
    """The most recent records."""
    console.print(_table(_open(site_path).tail(n)))


@audit_app.command("show")
def show(
    record: Annotated[int, typer.Argument(help="Record number (#)")],
    site_path: SiteOption = DEFAULT_SITE,
) -> None:
    """One record in full: arguments, every rule's verdict, commands, acks, states."""
    found = _open(site_path).get(record)
    if found is None:
        err_console.print(f"no audit record {record}")
        raise typer.Exit(1)
    console.print_json(found.model_dump_json())


@audit_app.command("query")
def query(
    site_path: SiteOption = DEFAULT_SITE,
    principal: Annotated[str | None, typer.Option(help="Only this principal")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only at or after (ISO, UTC)")] = None,
    outcome: Annotated[str | None, typer.Option(help="executed, refused, failed, ...")] = None,
    action: Annotated[str | None, typer.Option(help="toggle_relay, dispatch, halt, ...")] = None,
) -> None:
    """Records matching every filter given."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    records = _open(site_path).query(
        principal=principal, since=since, outcome=outcome, action=action
    )
    console.print(_table(records))


@audit_app.command("verify")
def verify(site_path: SiteOption = DEFAULT_SITE) -> None:
    """Walk the hash chain; exit 1 and list the problems if anything was altered."""
    report = _open(site_path).verify()
    if report.ok:
        console.print(
            f"[green]ok[/green]: {report.records} records, chain intact, "
            f"head {report.head_hash[:16]}…"
        )
        return
    err_console.print(
        f"[red]TAMPERED[/red]: {len(report.problems)} problem(s) in {report.records} records"
    )
    for problem in report.problems:
        err_console.print(f"  {problem}", highlight=False)
    raise typer.Exit(1)


@audit_app.command("export")
def export(
    site_path: SiteOption = DEFAULT_SITE,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON record per line")] = True,
) -> None:
    """Every record, oldest first, as JSON lines on stdout."""
    for line in _open(site_path).export_jsonl():
        sys.stdout.write(line + "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
