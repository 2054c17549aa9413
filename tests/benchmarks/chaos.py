"""Chaos run: the demo site under a real daemon, with random faults, then a count of what went wrong.

    .venv/bin/python -m tests.benchmarks.chaos --cycles 4 [--seed 1] [--cycle-seconds 25] [--keep]

Set-up: the demo site (``mofcom`` and ``tenders`` sources, quick checks every 8 s, full sweeps every 20 s), a
real ``listwatch run`` daemon, a separate ``listwatch alerts deliver --loop`` process (15 s lease), an
``rclone serve s3`` store, and three webhook subscribers: a fast one, one made slow in some cycles, and a dead
one (nothing listens). Each cycle moves the site to the next day (0 → 4) and, at random: serves a listing
page as a 200 "系统繁忙" (busy) page, answers 503 for a listing page, slows the slow webhook, takes the store
down for the cycle, and kill -9s a running crawl, the deliverer or the daemon (restarted a moment later).
Then the faults stop and everything settles (crawls finish, spool synced, outbox drained), and it prints:

- false removals: ``removed``/``missing`` events for programmes the site never took off its list;
- lost alerts: events the fast or slow subscriber never received;
- duplicate alerts, and why (same delivery id twice: at-least-once after a kill between the 2xx and the
  commit, which receivers drop by ``Idempotency-Key``; two ``new`` events for one programme: a real bug);
- closed WARCs failing ``warcio check``; captures whose record cannot be read back (digest-checked).

Not a unit test: it takes minutes and uses both cores. It exits 1 when any count that must be 0 is not.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select

from archive.catalog import Catalog, open_catalog
from archive.catalog.models import Capture, CrawlRun, Event, Outbox, Program, Subscription
from archive.retrieval import read_record
from archive.spool import closed_warcs, sync
from archive.storage import open_storage
from crawlers.demo import programmes as plan_data
from crawlers.demo.pages import Response, html_page
from crawlers.demo.site import DemoSite, _Entry
from scheduler.alerts import subscribe
from scheduler.settings import Settings, load_settings
from tests.alerts_support import Endpoint
from tests.archive_tools import free_port, warcio_check
from tests.daemon_support import DaemonProcess, env_for, scheduled_source
from tests.servers import S3Server, rclone_server

ROOT = Path(__file__).resolve().parents[2]
BUSY = html_page("系统繁忙", "<p>系统繁忙，请稍后再试。</p>").encode("utf-8")
LISTING_PAGES = {"mofcom": ["/mofcom/list/index.html", "/mofcom/list/index_1.html", "/mofcom/list/index_2.html"],
                 "tenders": ["/tenders/list.html", "/tenders/list_1.html"]}


class ChaosSite(DemoSite):
    """The demo site, plus listing pages that answer 200 with a "system busy" page instead of the list."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.busy: set[str] = set()

    def _entry(self, day: int, path: str, query: str) -> _Entry:
        if path in self.busy:
            return _Entry(Response(200, "text/html; charset=utf-8", BUSY, cacheable=False), '"busy"')
        return super()._entry(day, path, query)


class Chaos:
    def __init__(self, root: Path, site: ChaosSite, store: S3Server, rng: random.Random) -> None:
        self.root, self.site, self.store, self.rng = root, site, store, rng
        self.data_dir = root / "data"
        self.bucket = store.make_bucket()
        self.env = env_for(self.data_dir, root / "sources", site.url, deliver_interval=10**6, maintenance_interval=4,
                           crawl_timeout=60, kill_grace=3, max_crawls=2, jitter=0) | store.settings_env(self.bucket)
        self.env["LISTWATCH_LOG_LEVEL"] = "WARNING"
        for name in ("mofcom.yaml", "tenders.yaml"):
            scheduled_source(root / "sources", name, "{quick: 8s, full: 20s, jitter: 0}")
        self.settings: Settings = self._settings()
        self.catalog: Catalog = open_catalog(self.settings.catalog)
        self.fast, self.slow = Endpoint().start(), Endpoint().start()
        subscribe(self.catalog, "fast", f"http://{self.fast.url}/hook", channel="webhook")
        subscribe(self.catalog, "slow", f"http://{self.slow.url}/hook", channel="webhook")
        subscribe(self.catalog, "dead", f"http://127.0.0.1:{free_port()}/hook", channel="webhook")
        self.daemon: DaemonProcess | None = None
        self.deliverer: subprocess.Popen[bytes] | None = None
        self.actions: Counter[str] = Counter()
        self.starts = 0

    def _settings(self) -> Settings:
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return load_settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # -- processes --------------------------------------------------------------------------------------------

    def ensure_running(self) -> None:
        if self.daemon is None or self.daemon.proc.poll() is not None:
            self.starts += 1
            self.daemon = DaemonProcess(self.env, self.root / f"daemon-{self.starts}.log")
        if self.deliverer is None or self.deliverer.poll() is not None:
            log = (self.root / "deliver.log").open("ab")
            self.deliverer = subprocess.Popen(
                [sys.executable, "-m", "scheduler", "alerts", "deliver", "--loop", "--interval", "0.5",
                 "--lease", "15"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def crawls(self) -> list[psutil.Process]:
        if self.daemon is None:
            return []
        try:
            children = psutil.Process(self.daemon.proc.pid).children()
        except psutil.Error:
            return []
        return [c for c in children if "crawl" in " ".join(c.cmdline())]

    def kill_something(self) -> None:
        choice = self.rng.choice(["crawl", "crawl", "deliverer", "daemon"])
        if choice == "crawl" and (running := self.crawls()):
            victim = self.rng.choice(running)
            try:
                os.killpg(victim.pid, signal.SIGKILL)
                self.actions["kill -9 crawl"] += 1
            except OSError:
                pass
        elif choice == "deliverer" and self.deliverer is not None and self.deliverer.poll() is None:
            self.deliverer.kill()
            self.deliverer.wait()
            self.actions["kill -9 deliverer"] += 1
        elif choice == "daemon" and self.daemon is not None and self.daemon.proc.poll() is None:
            self.daemon.kill()
            self.actions["kill -9 daemon"] += 1

    # -- one cycle ----------------------------------------------------------------------------------------------

    def cycle(self, number: int, seconds: float) -> None:
        self.site.day = min(number, plan_data.MAX_DAY)
        faults = []
        if number and self.rng.random() < 0.6:
            shape = self.rng.choice(sorted(LISTING_PAGES))
            page = self.rng.choice(LISTING_PAGES[shape])
            self.site.busy.add(page)
            faults.append(f"busy {page}")
        if number and self.rng.random() < 0.5:
            page = self.rng.choice([p for pages in LISTING_PAGES.values() for p in pages])
            self.site.set_fault(page, "503")
            faults.append(f"503 {page}")
        if self.rng.random() < 0.5:
            self.slow.delay = 3.0
            faults.append("slow webhook")
        if number and self.rng.random() < 0.4:
            self.store.stop()
            faults.append("store down")
        self.actions.update(f.rsplit(" /", 1)[0] for f in faults)
        print(f"cycle {number}: day {self.site.day}; {', '.join(faults) or 'no faults'}", flush=True)
        end = time.monotonic() + seconds
        kill_at = sorted(time.monotonic() + self.rng.uniform(3, seconds - 2) for _ in range(self.rng.randint(1, 3)))
        while time.monotonic() < end:
            self.ensure_running()
            if kill_at and time.monotonic() >= kill_at[0]:
                kill_at.pop(0)
                self.kill_something()
                time.sleep(1)
            time.sleep(0.2)
        self.site.busy.clear()
        for pages in LISTING_PAGES.values():
            for page in pages:
                self.site.set_fault(page, None)
        self.slow.delay = 0.0
        self.store.start()

    def settle(self, limit: float) -> bool:
        """Let crawls finish, the spool sync and the outbox drain, with no faults; True when all did."""
        deadline = time.monotonic() + limit
        full_after = time.monotonic() + 25       # one clean full sweep of each source after the faults
        while time.monotonic() < deadline:
            self.ensure_running()
            if time.monotonic() > full_after and self._quiet():
                return True
            time.sleep(1)
        return False

    def _quiet(self) -> bool:
        with self.catalog.read_session() as session:
            running = session.scalar(select(CrawlRun.id).where(CrawlRun.status == "running").limit(1))
            waiting = session.scalar(select(Outbox.id).join(Subscription).where(
                Subscription.name.in_(("fast", "slow")), Outbox.state != "sent").limit(1))
        return running is None and waiting is None and not closed_warcs(self.settings.spool_dir)

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.proc.poll() is None:
            self.daemon.terminate()
        if self.deliverer is not None and self.deliverer.poll() is None:
            self.deliverer.terminate()
            self.deliverer.wait(30)
        self.fast.stop()
        self.slow.stop()


# -- the counts -------------------------------------------------------------------------------------------------

_PID = re.compile(r"/(\d{4})\.html")


def false_removals(catalog: Catalog) -> list[str]:
    legit = {pid for shape in LISTING_PAGES for p in [plan_data.plan(shape)] for pid in (p.removed, p.soft404,
                                                                                         p.delisted)}
    with catalog.read_session() as session:
        rows = session.execute(select(Event.kind, Program.key).join(Program, Event.program_id == Program.id)
                               .where(Event.kind.in_(("removed", "missing")))).all()
    return [f"{kind} {key}" for kind, key in rows if (m := _PID.search(key)) is None or m.group(1) not in legit]


def alert_counts(chaos: Chaos) -> dict[str, Any]:
    with chaos.catalog.read_session() as session:
        events = {e.id: e for e in session.scalars(select(Event).where(Event.backfill.is_(False)))}
        new_per_programme = Counter(e.program_id for e in events.values() if e.kind == "new")
    out: dict[str, Any] = {"events": len(events)}
    for name, endpoint in (("fast", chaos.fast), ("slow", chaos.slow)):
        received = [r for r in endpoint.received if r.json.get("type") == "event"]
        got = Counter(r.json["event"]["id"] for r in received)
        keys = Counter(r.headers.get("idempotency-key") for r in received)
        out[f"lost ({name})"] = sorted(set(events) - set(got))
        out[f"duplicates ({name}, same delivery id: at-least-once after a kill)"] = sum(
            n - 1 for n in keys.values() if n > 1)
    out["duplicate 'new' events for one programme"] = sum(n - 1 for n in new_per_programme.values() if n > 1)
    return out


def warc_failures(chaos: Chaos) -> tuple[int, int]:
    assert chaos.store.data_dir is not None
    files = [p for base in (chaos.data_dir / "spool", chaos.store.data_dir) for p in base.rglob("*.warc.gz")
             if p.is_file()]
    failed = 0
    for path in files:
        try:
            warcio_check(path)
        except AssertionError:
            failed += 1
    return len(files), failed


def unreadable_captures(chaos: Chaos) -> tuple[int, int]:
    storage = open_storage(chaos.settings)
    with chaos.catalog.read_session() as session:
        ids = list(session.scalars(select(Capture.record_id)))
    bad = 0
    for record_id in ids:
        try:
            read_record(chaos.catalog, storage, record_id)
        except Exception:
            bad += 1
    return len(ids), bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--cycle-seconds", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=240.0, help="seconds to wait for everything to settle")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="listwatch-chaos-"))
    print(f"chaos: {args.cycles} cycles of {args.cycle_seconds:g} s, seed {args.seed}, in {root}", flush=True)
    with ChaosSite(bench_pages=20) as site, rclone_server() as store:
        chaos = Chaos(root, site, store, rng)
        try:
            for number in range(args.cycles):
                chaos.cycle(number, args.cycle_seconds)
            settled = chaos.settle(args.settle)
        finally:
            chaos.stop()
        sync(chaos.catalog, open_storage(chaos.settings), chaos.settings.spool_dir)
        removals = false_removals(chaos.catalog)
        alerts = alert_counts(chaos)
        warcs, bad_warcs = warc_failures(chaos)
        captures, unreadable = unreadable_captures(chaos)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    lost = sum(len(v) for k, v in alerts.items() if k.startswith("lost"))
    print(f"\nfaults and kills: {dict(chaos.actions)}; daemon starts: {chaos.starts}; settled: {settled}")
    print(f"false removals: {len(removals)}" + (f"  {removals[:5]}" if removals else ""))
    print(f"lost alerts: {lost} (of {alerts['events']} events x 2 live subscribers)"
          + "".join(f"  {k}: {v[:5]}" for k, v in alerts.items() if k.startswith("lost") and v))
    for key, value in alerts.items():
        if key.startswith("duplicate"):
            print(f"{key}: {value}")
    print(f"closed WARCs failing warcio check: {bad_warcs} (of {warcs})")
    print(f"captures unreadable: {unreadable} (of {captures})")
    broken = removals or lost or bad_warcs or unreadable or alerts["duplicate 'new' events for one programme"]
    return 1 if broken or not settled else 0


if __name__ == "__main__":
    sys.exit(main())
