"""listwatch run (the scheduler daemon) and listwatch status."""

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
def run_cmd(
    standby: Annotated[bool, typer.Option(
        "--standby", help="If another scheduler holds this catalog, wait and take over when it stops.")] = False,
) -> None:
    """Run the scheduler until SIGTERM/SIGINT: every source on its schedule, alerts, health, spool sync.

    One per catalog: a second run on the same catalog refuses (exit 1, naming the host, pid and start of the
    one running) unless --standby. SIGHUP or editing sources_dir reloads the sources. Logs at the log_level
    setting (INFO by default); --log-format json writes JSON lines with run_id and source fields.

    Example: listwatch run --log-format json
    """
    from scheduler.cli.common import fail
    from scheduler.cli.output import loudness
    from scheduler.daemon import run_daemon
    from scheduler.singleton import SchedulerHeld

    settings = _settings()
    settings = settings.model_copy(update={"log_level": loudness.effective(settings.log_level),
                                           "log_json": settings.log_json or loudness.fmt == "json"})
    try:
        run_daemon(settings, standby=standby)
    except SchedulerHeld as exc:
        raise fail("listwatch run", str(exc), code=1) from None


def _when(value: str | None) -> str:
    return (value or "—").replace("T", " ").replace("+00:00", "")


def _short(value: str | None) -> str:
    """A UTC time as month-day hour:minute (the table is about the last day or so)."""
    return _when(value)[5:16] if value else "—"


def _row(source_id: str, entry: dict[str, Any]) -> list[str]:
    last = entry["last_run"]
    outcome = "—"
    if last:
        style = _STYLE.get(last["status"], "white")
        outcome = f"[{style}]{last['status']}[/] {last['kind']}"
    nxt = entry["next_run"]
    soonest = min((v for v in (nxt["quick"], nxt["full"]) if v), default=None)
    health = ", ".join(entry["health"])
    return [source_id, _short(last["started_at"]) if last else "—", outcome, _short(soonest),
            str(entry["programmes"]), "[green]ok[/]" if health == "ok" else f"[red]{health}[/]"]


@app.command("status")
def status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Every source's last run, outcome, next runs, programmes and health; alert and spool backlogs; the
    running scheduler (host, pid, since when) or that none runs.

    Example: listwatch status --json.
    """
    from scheduler.status import gather

    data = gather(_settings())
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"listwatch status at {_when(data['at'])} UTC (times UTC)", box=None, pad_edge=False,
                  title_justify="left", header_style="bold underline")
    widest = max([len(s) for s in data["sources"]] + [6])
    for column in ("source", "last run", "outcome", "next run", "progs", "health"):
        table.add_column(column, no_wrap=column != "health", min_width=widest if column == "source" else None,
                         justify="right" if column == "progs" else "left")
    for source_id, entry in data["sources"].items():
        table.add_row(*_row(source_id, entry))
    console.print(table)
    for source_id, entry in data["sources"].items():
        last = entry["last_run"]
        if last and last["reason"]:
            console.print(f"  {source_id}: {last['reason']}", highlight=False, soft_wrap=True, markup=False)
    spool = data["spool"]
    console.print(f"alert backlog: {data['alert_backlog']} · spool: {spool['closed']} closed WARC(s) waiting "
                  f"({spool['bytes']:,} bytes), {spool['open']} open, {spool['quarantined']} quarantined")
    running = data.get("scheduler")
    console.print(f"scheduler: running on {running}" if running else
                  "scheduler: [yellow]not running[/] (start it with `listwatch run`)", highlight=False)
    if data["sources_problem"]:
        console.print(f"[red]sources:[/] {data['sources_problem']}")
