"""Unchanged quick checks through the scheduler's own path: one process per crawl against crawl hosts.

    .venv/bin/python -m tests.benchmarks.bench_scheduler [--sources 300] [--window 120] [--max-crawls 8]

One run: the demo site on loopback; ``--sources`` copies of the demo ``mofcom`` source (3 listing pages,
25 detail pages, attachments) under their own ids, each with a quick check every 10 s (so every source is
always due: the scheduler runs as many as it can); a first full crawl of each (setup, with ``listwatch
crawl``, not measured). Then ``listwatch run`` (the real daemon, a subprocess) twice on that catalog, once
with ``crawl_hosts: 0`` (one ``python -m scheduler crawl`` process per check, the old way) and once with
crawl hosts (the default), the same ``max_crawls``. For each: after a warm-up of ``--warmup`` seconds, the
quick runs that finished in the next ``--window`` seconds (from the catalog), as sources per 15 minutes,
plus the statuses seen. Prints the ratio and PASS/FAIL against 2,000 sources per 15 minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from archive.catalog import open_catalog
from archive.catalog.models import CrawlRun
from crawlers.demo.site import DemoSite

ROOT = Path(__file__).resolve().parents[2]
MOFCOM = ROOT / "crawlers" / "demo" / "sources" / "mofcom.yaml"
PERIOD = 900
TARGET = 2000
BATCH = 100


def write_sources(directory: Path, count: int) -> list[Path]:
    text = MOFCOM.read_text(encoding="utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = directory / f"bench-{n:04d}.yaml"
        path.write_text(text.replace("id: demo-mofcom", f"id: bench-{n:04d}")
                        + "\nschedule: {quick: 10s, full: null, jitter: 0}\n", encoding="utf-8")
        paths.append(path)
    return paths


def environment(data_dir: Path, sources_dir: Path, site: DemoSite, **scheduler: object) -> dict[str, str]:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SOURCES_DIR": str(sources_dir),
           "LISTWATCH_SETTINGS": str(data_dir / "none.yaml"), "LISTWATCH_DEMO_URL": site.url,
           "LISTWATCH_LOG_LEVEL": "INFO"}
    return env | {f"LISTWATCH_SCHEDULER__{k.upper()}": str(v) for k, v in scheduler.items()}


def first_crawls(paths: list[Path], env: dict[str, str]) -> None:
    for start in range(0, len(paths), BATCH):
        batch = [str(p) for p in paths[start:start + BATCH]]
        done = subprocess.run([sys.executable, "-m", "scheduler", "crawl", "--kind", "full", *batch], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=3600, check=False)
        if done.returncode != 0:
            raise SystemExit(f"first crawls failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        print(f"  first full crawls: {start + len(batch)}/{len(paths)}", flush=True)


def finished_between(catalog_url: str, start: datetime, end: datetime) -> Counter[str]:
    catalog = open_catalog(catalog_url)
    with catalog.read_session() as session:
        rows = session.scalars(select(CrawlRun).where(CrawlRun.kind == "quick", CrawlRun.finished_at.is_not(None)))
        statuses: Counter[str] = Counter()
        for run in rows:
            finished = run.finished_at
            assert finished is not None
            finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
            if start <= finished < end:
                statuses[run.status] += 1
    catalog.engine.dispose()
    return statuses


@dataclass
class Measured:
    mode: str
    runs: int
    per_period: float
    statuses: dict[str, int]
    load: float


def measure(mode: str, env: dict[str, str], data_dir: Path, warmup: float, window: float) -> Measured:
    log = (data_dir / f"daemon-{mode}.log").open("ab")
    daemon = subprocess.Popen([sys.executable, "-m", "scheduler", "run"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        time.sleep(warmup)
        start = datetime.now(UTC)
        time.sleep(window)
        end = datetime.now(UTC)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(300)
        log.close()
    statuses = finished_between(f"sqlite:///{data_dir / 'catalog.sqlite'}", start, end)
    done = sum(statuses.values())
    load = os.getloadavg()[0]
    return Measured(mode, done, done / window * PERIOD, dict(statuses), load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--max-crawls", type=int, default=8)
    args = parser.parse_args()
    with DemoSite(bench_pages=10) as site, tempfile.TemporaryDirectory(prefix="lw-bench-sched-") as tmp:
        data_dir, sources_dir = Path(tmp) / "data", Path(tmp) / "sources"
        paths = write_sources(sources_dir, args.sources)
        print(f"{args.sources} sources (demo mofcom copies); first full crawls…", flush=True)
        first_crawls(paths, environment(data_dir, sources_dir, site))
        results = []
        for mode, hosts in (("one process per crawl (crawl_hosts: 0)", 0), ("crawl hosts (crawl_hosts: 2)", 2)):
            env = environment(data_dir, sources_dir, site, max_crawls=args.max_crawls, crawl_hosts=hosts,
                              quick_interval=10, maintenance_interval=60)
            print(f"measuring: {mode}, max_crawls {args.max_crawls}, warm-up {args.warmup:.0f} s, "
                  f"window {args.window:.0f} s…", flush=True)
            results.append(measure(mode, env, data_dir, args.warmup, args.window))
    print(f"\nUnchanged quick checks of {args.sources} sources through `listwatch run` (2 cores):")
    for r in results:
        print(f"  {r.mode:42} {r.runs:5} runs in {args.window:.0f} s → {r.per_period:8,.0f} sources "
              f"/ 15 min  (statuses {r.statuses}, load avg {r.load:.1f})")
    old, new = results[0].per_period, results[1].per_period
    ratio = new / old if old else float("inf")
    verdict = "PASS" if new >= TARGET else "FAIL"
    print(f"  ratio crawl hosts / one process per crawl: {ratio:.2f}×")
    print(f"  target ≥ {TARGET:,} sources / 15 min with crawl hosts: {new:,.0f} → {verdict}")


if __name__ == "__main__":
    main()
