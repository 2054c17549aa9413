"""``listwatch run`` (the scheduler daemon) and ``listwatch status``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from scheduler.cli.common import console
from scheduler.cli.common import settings_or_exit as _settings

app = typer.Typer()

_STYLE = {"complete": "green", "degraded": "yellow", "incomplete": "yellow", "failed": "red", "interrupted": "red",
          "running": "cyan"}


@app.command("run")
def run_cmd() -> None:
    """Run the scheduler until SIGTERM/SIGINT: every source on its schedule, alerts, health, spool sync.

    Example: ``listwatch run`` (one per catalog; SIGHUP or editing ``sources_dir`` reloads the sources).
    """
    from scheduler.daemon import run_daemon

    run_daemon(_settings())


def _when(value: str | None) -> str:
    return (value or "—").replace("T", " ").replace("+00:00", "")


def _row(source_id: str, entry: dict[str, Any]) -> list[str]:
    last = entry["last_run"]
    outcome = "—"
    if last:
        style = _STYLE.get(last["status"], "white")
        outcome = f"[{style}]{last['status']}[/]" + (f" ({last['reason'][:60]})" if last["reason"] else "")
    nxt = entry["next_run"]
    health = ", ".join(entry["health"])
    return [source_id, _when(last["started_at"]) if last else "—", last["kind"] if last else "—", outcome,
            f"quick {_when(nxt['quick'])}\nfull {_when(nxt['full'])}", str(entry["programmes"]),
            "[green]ok[/]" if health == "ok" else f"[red]{health}[/]"]


@app.command("status")
def status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Every source's last run, outcome, next runs, programmes and health; alert and spool backlogs.

    Example: ``listwatch status --json``.
    """
    from scheduler.status import gather

    data = gather(_settings())
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"listwatch status at {_when(data['at'])} UTC")
    for column in ("source", "last run", "kind", "outcome", "next run", "programmes", "health"):
        table.add_column(column)
    for source_id, entry in data["sources"].items():
        table.add_row(*_row(source_id, entry))
    console.print(table)
    spool = data["spool"]
    console.print(f"alert backlog: {data['alert_backlog']} · spool: {spool['closed']} closed WARC(s) waiting "
                  f"({spool['bytes']:,} bytes), {spool['open']} open, {spool['quarantined']} quarantined")
    if data["sources_problem"]:
        console.print(f"[red]sources:[/] {data['sources_problem']}")
