"""Unchanged quick checks through the scheduler's own path: one process per crawl against crawl hosts.

    .venv/bin/python -m tests.benchmarks.bench_scheduler [--sources 300] [--window 120] [--max-crawls 8]

One run: the demo site on loopback; ``--sources`` copies of the demo ``mofcom`` source (3 listing pages,
25 detail pages, attachments) under their own ids, each with a quick check every 10 s (so every source is
always due: the scheduler runs as many as it can); a first full crawl of each (setup, with ``listwatch
crawl``, not measured). Then ``listwatch run`` (the real daemon, a subprocess) twice on that catalog, once
with ``crawl_hosts: 0`` (one ``python -m scheduler crawl`` process per check, the old way) and once with
crawl hosts (the default), the same ``max_crawls``. For each: after a warm-up of ``--warmup`` seconds, the
quick runs that finished in the next ``--window`` seconds (from the catalog), as sources per 15 minutes,
plus the statuses seen and the CPU seconds the scheduler's whole process tree spent per check (less
sensitive to other load on the machine than the wall-clock rate). ``--rounds N`` alternates the order.
Prints medians, ratios and PASS/FAIL against 2,000 sources per 15 minutes through the scheduler.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
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
from tests.benchmarks.processes import tree_cpu
from tests.daemon_support import env_for

ROOT = Path(__file__).resolve().parents[2]
MOFCOM = ROOT / "crawlers" / "demo" / "sources" / "mofcom.yaml"
PERIOD = 900
CORES = 2
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
    cpu_per_check: float      # CPU seconds of the scheduler's whole process tree per finished check


def measure(mode: str, env: dict[str, str], data_dir: Path, warmup: float, window: float) -> Measured:
    log = (data_dir / f"daemon-{mode}.log").open("ab")
    daemon = subprocess.Popen([sys.executable, "-m", "scheduler", "run"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        time.sleep(warmup)
        start, cpu_start = datetime.now(UTC), tree_cpu(daemon.pid)
        time.sleep(window)
        end, cpu_end = datetime.now(UTC), tree_cpu(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(300)
        log.close()
    statuses = finished_between(f"sqlite:///{data_dir / 'catalog.sqlite'}", start, end)
    done = sum(statuses.values())
    load = os.getloadavg()[0]
    cpu_per_check = (cpu_end - cpu_start) / done if done else float("inf")
    return Measured(mode, done, done / window * PERIOD, dict(statuses), load, cpu_per_check)


MODES = (("one process per crawl (crawl_hosts: 0)", 0), ("crawl hosts (crawl_hosts: 2)", 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--max-crawls", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="Windows per mode, in alternating order.")
    args = parser.parse_args()
    with DemoSite(bench_pages=10) as site, tempfile.TemporaryDirectory(prefix="lw-bench-sched-") as tmp:
        # clients resetting keep-alive connections are normal here: keep the site's tracebacks off the report
        site._server.handle_error = lambda request, address: None  # type: ignore[union-attr,method-assign]
        data_dir, sources_dir = Path(tmp) / "data", Path(tmp) / "sources"
        paths = write_sources(sources_dir, args.sources)
        print(f"{args.sources} sources (demo mofcom copies); first full crawls…", flush=True)
        first_crawls(paths, env_for(data_dir, sources_dir, site.url))
        results: dict[str, list[Measured]] = {mode: [] for mode, _ in MODES}
        for round_ in range(args.rounds):
            for mode, hosts in MODES if round_ % 2 == 0 else MODES[::-1]:
                env = env_for(data_dir, sources_dir, site.url, max_crawls=args.max_crawls, crawl_hosts=hosts,
                              quick_interval=10, maintenance_interval=60)
                print(f"measuring: {mode}, max_crawls {args.max_crawls}, warm-up {args.warmup:.0f} s, "
                      f"window {args.window:.0f} s…", flush=True)
                results[mode].append(measure(mode, env, data_dir, args.warmup, args.window))
    report(results, args.sources, args.window)


def report(results: dict[str, list[Measured]], sources: int, window: float) -> None:
    print(f"\nUnchanged quick checks of {sources} sources through `listwatch run` (2 cores):")
    for measured in results.values():
        for r in measured:
            print(f"  {r.mode:42} {r.runs:5} runs in {window:.0f} s → {r.per_period:8,.0f} sources / 15 min; "
                  f"{r.cpu_per_check:.2f} CPU-s per check (statuses {r.statuses}, load avg {r.load:.1f})")
    (old_mode, _), (new_mode, _) = MODES
    old = statistics.median(r.per_period for r in results[old_mode])
    new = statistics.median(r.per_period for r in results[new_mode])
    old_cpu = statistics.median(r.cpu_per_check for r in results[old_mode])
    new_cpu = statistics.median(r.cpu_per_check for r in results[new_mode])
    print(f"  medians: {old:,.0f} → {new:,.0f} sources / 15 min, ratio {new / old if old else float('inf'):.2f}×; "
          f"CPU per check {old_cpu:.2f} → {new_cpu:.2f} s, ratio {new_cpu / old_cpu:.3f}")
    print(f"  CPU-bound capacity of 2 idle cores ({CORES} × {PERIOD} s / CPU per check): "
          f"{CORES * PERIOD / old_cpu:,.0f} → {CORES * PERIOD / new_cpu:,.0f} sources / 15 min")
    verdict = "PASS" if new >= TARGET else "FAIL"
    print(f"  target ≥ {TARGET:,} sources / 15 min through the scheduler with crawl hosts: {new:,.0f} → {verdict}")


if __name__ == "__main__":
    main()
