"""listwatch demo: the demo site crawled once (default), or the whole unattended loop (--loop).

The loop serves the demo site, runs the scheduler daemon on short intervals over a temporary sources
directory (the demo sources with schedules), advances the site's day every --day-every seconds, subscribes
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

from crawlers.sources import SourceError
from scheduler.cli.common import command_name, console, err, fail
from scheduler.cli.common import settings_or_exit as _settings
from scheduler.cli.crawl import DEMO_SOURCES, print_outcomes
from scheduler.project import DEMO_PORT
from scheduler.settings import Settings

app = typer.Typer()


@app.command()
def demo(
    day: Annotated[int, typer.Option(help="Which day of the demo site's story to serve (first day with --loop).")] = 0,
    port: Annotated[int, typer.Option(envvar="LISTWATCH_DEMO_PORT", help="Port of the demo site; keep it across "
                                      "--day runs (programme keys are URLs). 0 = any free port.")] = DEMO_PORT,
    keep_serving: Annotated[bool, typer.Option(help="Keep the demo site up after crawling.")] = False,
    loop: Annotated[bool, typer.Option("--loop", help="Run the scheduler, days advancing, alerts arriving.")] = False,
    minutes: Annotated[float, typer.Option(help="How long --loop runs.", min=0.2)] = 3.0,
    quick_every: Annotated[int, typer.Option(help="Seconds between quick checks (--loop).", min=5)] = 20,
    full_every: Annotated[int, typer.Option(help="Seconds between full sweeps (--loop).", min=10)] = 60,
    day_every: Annotated[float, typer.Option(help="Seconds between the site's days (--loop).", min=5)] = 30,
) -> None:
    """Serve the bundled demo site on loopback, crawl every demo source, show what was archived.

    Leaves a project behind in the current directory: listwatch.yaml (if there was none) and the demo
    sources in the sources directory, so crawl, run, programs and serve work on them afterwards
    (while the site is up: --keep-serving).

    Example: listwatch demo --day 1 (the site's next day: new, edited and removed programmes)
    """
    from crawlers.demo.site import DemoSite

    settings = _settings()
    site = DemoSite(port=port, day=day)
    try:
        site.start()
    except OSError as exc:
        raise fail("demo", f"cannot serve the demo site on port {port}: {exc.strerror or exc} (another "
                           "listwatch demo still running?); pass --port N, the same on every --day run") from None
    try:
        os.environ["LISTWATCH_DEMO_URL"] = site.url
        console.print(f"Demo site (day {day}) at [bold]{site.url}/[/]", highlight=False)
        if loop:
            _loop(settings, site, minutes=minutes, quick=quick_every, full=full_every, day_every=day_every)
            return
        ok = _once(settings, site.url, day)
        if keep_serving:
            lw = command_name()
            console.print(f"Serving {site.url}/ until Ctrl-C: in another terminal, {lw} crawl demo-mofcom, "
                          f"{lw} run, {lw} serve.", highlight=False)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    finally:
        site.stop()
    if not ok:
        raise typer.Exit(1)


def _project(settings: Settings, url: str) -> list[Path]:
    """Write the demo sources (and listwatch.yaml when there is none); the source files to crawl."""
    from scheduler.project import demo_sources, settings_yaml, write_if_ours
    from scheduler.settings import settings_path

    if not settings_path().exists():
        write_if_ours(settings_path(), settings_yaml(
            {"sources_dir": str(settings.sources_dir), "api": {"require_token": False}},
            title="listwatch settings written by listwatch demo (the API needs no token: it binds 127.0.0.1)"))
    paths = []
    for name, text in demo_sources(url).items():
        path = settings.sources_dir / name
        if not write_if_ours(path, text):
            err.print(f"[yellow]demo:[/] kept your {path} (not written by listwatch)", highlight=False)
        paths.append(path)
    return paths


def _once(settings: Settings, url: str, day: int) -> bool:
    from crawlers.sources import load_source
    from scheduler.cli.progress import CrawlProgress
    from scheduler.pipeline import crawl_and_ingest
    from scheduler.settings import settings_path

    try:
        sources = [load_source(path) for path in _project(settings, url)]
    except SourceError as exc:
        raise fail("source", str(exc)) from None
    with CrawlProgress(err, [s.id for s in sources]) as progress:
        outcomes = crawl_and_ingest(settings, sources, watch=progress.watch)
    print_outcomes(outcomes, settings)
    where = settings.sources_dir
    console.print(f"Project: {settings_path()} and {len(sources)} demo sources in {where}/.", highlight=False)
    if day < 4:
        lw = command_name()
        console.print(f"Next: {lw} demo --day {day + 1} (the site changes); {lw} programs list; {lw} serve "
                      f"(the web interface, http://{settings.api.host}:{settings.api.port}/); {lw} demo "
                      f"--keep-serving, then {lw} crawl demo-mofcom.", highlight=False)
    return all(o.report.pages_ok["listing"] for o in outcomes)



def scheduled_sources(target: Path, *, quick: int, full: int, jitter: int = 2, skip_browser: bool = False) -> None:
    """Copy the demo sources into target with a schedule section (quick every quick s, full full s)."""
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
