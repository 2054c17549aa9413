"""``listwatch demo``: the demo site crawled once (default), or the whole unattended loop (``--loop``).

The loop serves the demo site, runs the scheduler daemon on short intervals over a temporary sources
directory (the demo sources with schedules), advances the site's day every ``--day-every`` seconds, subscribes
a local webhook endpoint that prints each alert as it arrives, and ends with a summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import typer

from crawlers.sources import SourceError, load_sources
from scheduler.cli.common import console, err
from scheduler.cli.common import settings_or_exit as _settings
from scheduler.cli.crawl import DEMO_SOURCES, print_outcomes
from scheduler.settings import Settings

app = typer.Typer()


@app.command()
def demo(
    day: Annotated[int, typer.Option(help="Which day of the demo site's story to serve (first day with --loop).")] = 0,
    port: Annotated[int, typer.Option(help="Port for the demo site (0 = any free port).")] = 0,
    keep_serving: Annotated[bool, typer.Option(help="Keep the demo site up after crawling.")] = False,
    loop: Annotated[bool, typer.Option("--loop", help="Run the scheduler, days advancing, alerts arriving.")] = False,
    minutes: Annotated[float, typer.Option(help="How long --loop runs.", min=0.2)] = 3.0,
    quick_every: Annotated[int, typer.Option(help="Seconds between quick checks (--loop).", min=5)] = 20,
    full_every: Annotated[int, typer.Option(help="Seconds between full sweeps (--loop).", min=10)] = 60,
    day_every: Annotated[float, typer.Option(help="Seconds between the site's days (--loop).", min=5)] = 30,
) -> None:
    """Serve the bundled demo site on loopback, crawl every demo source, show what was archived.

    Example: ``listwatch demo --day 1``; ``listwatch demo --loop --minutes 3`` for the scheduler loop.
    """
    from crawlers.demo.site import DemoSite

    settings = _settings()
    with DemoSite(port=port, day=day) as site:
        os.environ["LISTWATCH_DEMO_URL"] = site.url
        console.print(f"Demo site (day {day}) at [bold]{site.url}/[/]")
        if loop:
            _loop(settings, site, minutes=minutes, quick=quick_every, full=full_every, day_every=day_every)
            return
        ok = _once(settings)
        if keep_serving:
            console.print("Serving until Ctrl-C.")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    if not ok:
        raise typer.Exit(1)


def _once(settings: Settings) -> bool:
    from scheduler.pipeline import crawl_and_ingest

    try:
        sources = load_sources(DEMO_SOURCES)
    except SourceError as exc:
        err.print(f"[red]source:[/] {exc}")
        raise typer.Exit(2) from None
    outcomes = crawl_and_ingest(settings, list(sources.values()))
    print_outcomes(outcomes, settings)
    console.print("Next: [bold]listwatch programs list[/], [bold]listwatch captures URL[/], "
                  "[bold]listwatch replay[/], [bold]listwatch demo --day 1[/] (then see the events).")
    return all(o.report.pages_ok["listing"] for o in outcomes)


def scheduled_sources(target: Path, *, quick: int, full: int, jitter: int = 2, skip_browser: bool = False) -> None:
    """Copy the demo sources into ``target`` with a schedule section (quick every ``quick`` s, full ``full`` s)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(DEMO_SOURCES.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if skip_browser and "mode: browser" in text:
            continue
        schedule = f"\nschedule: {{quick: {quick}s, full: {full}s, jitter: {jitter}, quick_pages: 2}}\n"
        (target / path.name).write_text(text + schedule, encoding="utf-8")


class _Printer(BaseHTTPRequestHandler):
    arrivals: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        events = data.get("alerts") or [data.get("event") or data]
        for event in events:
            self.arrivals.append(event)
            kind = event.get("category") or event.get("kind", "?")
            title = event.get("title") or event.get("summary") or ""
            console.print(f"  [magenta]alert[/] {kind}: {title} ({event.get('source', '')})")

    def log_message(self, *args: Any) -> None:
        pass


def _loop(settings: Settings, site: Any, *, minutes: float, quick: int, full: int, day_every: float) -> None:
    from scheduler.alerts import SubscriptionError, subscribe
    from scheduler.daemon import Daemon
    from scheduler.status import gather

    work = Path(tempfile.mkdtemp(prefix="listwatch-demo-"))
    scheduled_sources(work / "sources", quick=quick, full=full)
    settings = settings.model_copy(update={
        "sources_dir": work / "sources",
        "scheduler": settings.scheduler.model_copy(update={"deliver_interval": 1.0, "maintenance_interval": 10.0,
                                                           "jitter": 2})})
    arrivals: list[dict[str, Any]] = []
    handler = type("Printer", (_Printer,), {"arrivals": arrivals})
    hook = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    daemon = Daemon(settings)
    with contextlib.suppress(SubscriptionError):
        subscribe(daemon.catalog, "demo-webhook", f"http://127.0.0.1:{hook.server_address[1]}/alerts",
                  channel="webhook")
    console.print(f"Scheduler on: quick checks every {quick} s, full sweeps every {full} s, a new day every "
                  f"{day_every:g} s, for {minutes:g} min. Alerts are printed as they arrive (Ctrl-C ends early).")
    daemon.start()
    end = time.monotonic() + minutes * 60
    next_day = time.monotonic() + day_every
    try:
        while time.monotonic() < end:
            time.sleep(0.5)
            if time.monotonic() >= next_day:
                site.day += 1
                next_day += day_every
                console.print(f"[bold]The demo site moves to day {site.day}[/]")
    except KeyboardInterrupt:
        pass
    finally:
        settings.scheduler.stop_grace = 20
        daemon.stop()
        hook.shutdown()
    _summary(gather(settings, daemon.catalog), arrivals)


def _summary(status: dict[str, Any], arrivals: list[dict[str, Any]]) -> None:
    from collections import Counter

    console.print("\n[bold]Summary[/]")
    for source_id, entry in status["sources"].items():
        runs = ", ".join(f"{n} {s}" for s, n in sorted(entry["runs"].items()))
        console.print(f"  {source_id}: {runs or 'no runs'}; {entry['programmes']} programmes; "
                      f"health {', '.join(entry['health'])}")
    kinds = Counter(str(a.get("category") or a.get("kind")) for a in arrivals)
    console.print(f"  alerts received: {len(arrivals)} ({', '.join(f'{n} {k}' for k, n in kinds.items()) or 'none'});"
                  f" still queued: {status['alert_backlog']}; spool: {status['spool']['closed']} WARC(s) waiting")
