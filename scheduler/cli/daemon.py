"""listwatch run (the scheduler daemon) and listwatch status."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from scheduler.cli.common import console
from scheduler.cli.common import settings_or_exit as _settings
from scheduler.settings import Settings

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
    from scheduler.daemon import run_daemon
    from scheduler.settings import SettingsError
    from scheduler.singleton import SchedulerHeld

    settings = _loud(_settings())
    try:
        run_daemon(settings, standby=standby)
    except SchedulerHeld as exc:
        raise fail("listwatch run", str(exc), code=1) from None
    except SettingsError as exc:
        raise fail("settings", str(exc), code=2) from None


def _loud(settings: Settings) -> Settings:
    from scheduler.cli.output import loudness

    return settings.model_copy(update={"log_level": loudness.effective(settings.log_level),
                                       "log_json": settings.log_json or loudness.fmt == "json"})


@app.command("worker")
def worker_cmd(
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", min=1, help="Crawls at once on this machine (default: scheduler.max_crawls).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Start no worker: exit 0 when every worker of this machine beat in the catalog within "
                        "distributed.stalled_after, else 1 saying why (a container or systemd health check).")] = False,
) -> None:
    """Run a crawl worker (distributed mode) until SIGTERM/SIGINT: take crawl jobs queued by `listwatch run`
    and run each in its own subprocess with the usual time and memory limits.

    Any number of workers, on any machine, share one PostgreSQL catalog and one S3 store; each keeps its spool
    in its own data_dir. Needs distributed.enabled and a PostgreSQL catalog_url. On SIGTERM it takes no new job,
    gives running crawls stop_grace seconds, hands back any crawl it had to cut short, and exits.

    Example: LISTWATCH_DISTRIBUTED__ENABLED=true listwatch worker --concurrency 2
    """
    from scheduler.cli.common import fail
    from scheduler.settings import SettingsError

    if check:
        _check_workers()
        return
    from scheduler.worker import WorkerFailed, run_worker

    try:
        run_worker(_loud(_settings()), concurrency)
    except SettingsError as exc:
        raise fail("settings", str(exc), code=2) from None
    except WorkerFailed as exc:
        raise fail("listwatch worker", str(exc), code=1) from None


def _check_workers() -> None:
    """``worker --check``: this machine's workers, judged by their heartbeat rows (what the scheduler sees)."""
    from scheduler.cli.common import fail, opened_catalog
    from scheduler.worker_registry import local_health

    settings = _settings()
    catalog = opened_catalog(settings, migrate=False)
    try:
        problem = local_health(catalog, settings.distributed.stalled_after)
    except Exception as exc:   # the catalog unreachable is exactly what a health check must report
        raise fail("listwatch worker --check", f"cannot read the catalog: {str(exc).splitlines()[0]}", code=1) from None
    finally:
        catalog.dispose()
    if problem:
        raise fail("listwatch worker --check", problem, code=1)
    console.print("ok: this machine's workers are beating", highlight=False)


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
    _print_workers(data)


def _print_workers(data: dict[str, Any]) -> None:
    """Distributed mode: the queue line and one row per worker (nothing in single-machine mode)."""
    queue = data.get("queue")
    if queue is None and not data.get("workers"):
        return
    if queue is not None:
        oldest = queue["oldest_waiting"]
        wait = f", oldest waiting: {oldest['check']} for {oldest['seconds']} s (job {oldest['job']})" if oldest else ""
        console.print(f"queue: {queue['waiting']} waiting, {queue['running']} running{wait}", highlight=False,
                      soft_wrap=True)
    table = Table(title="workers", box=None, pad_edge=False, title_justify="left", header_style="bold underline")
    for column in ("host", "pid", "state", "heartbeat", "started", "crawls now"):
        table.add_column(column, no_wrap=column != "crawls now")
    style = {"working": "cyan", "idle": "green", "stopping": "yellow", "lost": "red"}
    for w in data["workers"]:
        crawls = ", ".join(f"{c['kind']} {c['source']} (job {c['job']}, run {c['run']})" for c in w["current"])
        table.add_row(w["host"], str(w["pid"]), f"[{style.get(w['state'], 'white')}]{w['state']}[/]",
                      f"{w['seconds_since_heartbeat']} s ago", _short(w["started_at"]),
                      crawls or f"— ({w['concurrency']} slot(s))")
    if data["workers"]:
        console.print(table)
    else:
        console.print("workers: [yellow]none[/] (start one with `listwatch worker`)", highlight=False)
