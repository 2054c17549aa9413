"""listwatch alerts: subscriptions, delivery of the outbox, and the Atom feed."""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from scheduler.alerts import (
    KINDS,
    MODES,
    SubscriptionError,
    atom_feed,
    deliver_due,
    list_subscriptions,
    remove_subscription,
    subscribe,
)
from scheduler.cli import output
from scheduler.cli.common import console, fail, opened_catalog
from scheduler.cli.common import settings_or_exit as _settings

app = typer.Typer(help="Alert subscriptions, delivery and feeds.", no_args_is_help=True)


@app.command("subscribe")
def subscribe_cmd(
    name: Annotated[str, typer.Argument(help="A name for the subscription (unique).")],
    url: Annotated[str, typer.Argument(help="Apprise URL, or webhook URL with --webhook; '-' reads it from stdin.")],
    webhook: Annotated[bool, typer.Option("--webhook", help="POST JSON documents to an http(s) URL.")] = False,
    source: Annotated[list[str] | None, typer.Option("--source", help="Only this source (repeatable).")] = None,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", help=f"Only this event kind (repeatable): {', '.join(KINDS)}.")] = None,
    keyword: Annotated[list[str] | None, typer.Option(
        "--keyword", help="Only programmes whose title or fields contain it (repeatable; any matches).")] = None,
    mode: Annotated[str, typer.Option(help=f"Delivery: {', '.join(MODES)}.")] = "immediate",
) -> None:
    """Subscribe a target to events.

    Example: listwatch alerts subscribe research 'mailtos://user:pass@example.org' --keyword 数字经济 --mode daily.
    The URL is a secret: it is stored, never printed (pass - to keep it out of shell history).
    """
    settings = _settings()
    target = sys.stdin.readline().strip() if url == "-" else url
    try:
        view = subscribe(opened_catalog(settings), name, target, channel="webhook" if webhook else "apprise",
                         sources=source or (), kinds=kind or (), keywords=keyword or (), mode=mode)
    except SubscriptionError as exc:
        raise fail("subscribe", str(exc)) from None
    console.print(f"[green]subscribed[/] {view.name} → {view.target} ({view.channel}, {view.mode})")


@app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """List subscriptions (targets shown as scheme and host only). Example: listwatch alerts list."""
    views = list_subscriptions(opened_catalog(_settings()))
    if as_json:
        for v in views:
            print(json.dumps({**asdict(v), "created_at": v.created_at.isoformat()}, ensure_ascii=False))
        return
    table = Table(title="Alert subscriptions", box=None, pad_edge=False, title_justify="left",
                  header_style="bold underline")
    for column in ("name", "channel", "mode", "target", "only"):
        table.add_column(column, no_wrap=True, overflow="ellipsis",
                         min_width=max([len(v.name) for v in views] + [4]) if column == "name" else None)
    for v in views:
        only = "; ".join(f"{label} {', '.join(values)}" for label, values in
                         (("sources", v.sources), ("kinds", v.kinds), ("keywords", v.keywords)) if values)
        table.add_row(v.name, v.channel, v.mode + ("" if v.active else " (off)"), v.target, only or "everything")
    console.print(table)


@app.command("remove")
def remove_cmd(name: Annotated[str, typer.Argument(help="The subscription's name.")]) -> None:
    """Remove a subscription and its queued deliveries. Example: listwatch alerts remove research."""
    try:
        remove_subscription(opened_catalog(_settings()), name)
    except SubscriptionError as exc:
        raise fail("remove", str(exc)) from None
    console.print(f"removed {name}")


@app.command("deliver")
def deliver_cmd(
    loop: Annotated[bool, typer.Option("--loop", help="Keep delivering until SIGTERM/SIGINT.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between passes with --loop.", min=0.05)] = 5.0,
    lease: Annotated[float | None, typer.Option(
        help="Seconds a message being sent stays reserved for this process; after a crash, it is retried "
             "once this has passed (default: the scheduler.deliver_lease setting). Keep it well above the 30 s "
             "send timeout.", min=1)] = None,
) -> None:
    """Send queued alerts that are due (once, or continuously with --loop).

    Example: listwatch alerts deliver --loop. A signal stops it between two messages.
    """
    settings = _settings()
    if loop:  # a long-running deliverer logs like the daemon: at the log_level setting unless -v/-q say otherwise
        output.apply(default=settings.log_level)
    catalog = opened_catalog(settings)
    stopping = threading.Event()
    if loop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
    while True:
        stats = deliver_due(catalog, settings, stop=stopping.is_set,
                            lease=timedelta(seconds=lease) if lease is not None else None)
        if stats.messages or stats.failures or stats.dead or not loop:
            console.print(f"alerts: {stats.messages} messages sent ({stats.rows} events), "
                          f"{stats.failures} failed, {stats.dead} given up")
        if not loop or stopping.wait(interval):
            break


@app.command("feed")
def feed_cmd(
    source: Annotated[str | None, typer.Option(help="Only this source's events.")] = None,
    limit: Annotated[int, typer.Option(help="Newest events to include.", min=1)] = 100,
) -> None:
    """Print the Atom feed of recent events. Example: listwatch alerts feed --source demo-mofcom > feed.xml."""
    settings = _settings()
    sys.stdout.buffer.write(atom_feed(opened_catalog(settings), settings, source, limit))
    sys.stdout.buffer.flush()
