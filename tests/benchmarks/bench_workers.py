"""Unchanged quick checks of many sources through one scheduler and 0, 1, 2, 3 crawl workers; per-check costs.

    .venv/bin/python -m tests.benchmarks.bench_workers [--sources 300] [--window 120] [--workers 0,1,2,3]

Real parts on this machine: a throwaway PostgreSQL cluster (catalog and job queue, ``tests/postgres.py``),
``rclone serve s3`` on loopback (the shared store), the demo site serving ``--sources`` listing pages (one per
source, 20 programmes each, answering conditional GETs with 304), and ``--sources`` source files.

1. Warm-up: ``listwatch run`` (single machine, ``--warm-slots`` crawl slots) makes every source's first full
   crawl; the sources then get a quick check every ``--quick`` (far more often than the machine can serve, so
   the checks queue up and what is measured is capacity, not the schedule).
2. For each entry of ``--workers``: 0 = ``listwatch run`` crawling itself with ``--slots`` slots (the
   single-machine reference); N ≥ 1 = ``listwatch run`` in distributed mode plus N ``listwatch worker``
   processes, each with ``--slots`` slots. After ``--settle`` s, a window of ``--window`` s counts the quick
   runs completed in ``crawl_runs`` and the CPU time (user + system, children included) of the workers, of the
   scheduler and of the PostgreSQL server, the catalog's growth (``pg_database_size``) and the store's.

Output: sources checked per 15 minutes for each, the scaling ratio against 1 worker, and per check: CPU-s in
workers, in the scheduler, in PostgreSQL, catalog bytes and store bytes (the figures infra/README.md's sizing
uses). The load average is printed with each window: the machine is shared, so compare within one run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from archive.catalog import open_catalog
from crawlers.demo.site import DemoSite
from scheduler.runner import tree_rss
from tests.benchmarks.processes import tree_cpu
from tests.listing_sources import listing_source
from tests.postgres import Cluster, postgres_cluster
from tests.servers import S3Server, rclone_server

ROOT = Path(__file__).resolve().parents[2]
PERIOD = 900
BUCKET = "listwatch-bench"
# Distributed mode, on the scheduler and on every worker (scheduler/settings.py); a worker's crawl slots are
# its scheduler.max_crawls (--slots here).
DISTRIBUTED_ENV = {"LISTWATCH_DISTRIBUTED__ENABLED": "true"}
WORKER_ARGV = ["worker"]


# -- processes and their CPU ----------------------------------------------------------------------------------

@dataclass
class Proc:
    """A ``python -m scheduler ARGV`` process with its output in ``log``."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", "scheduler", *self.argv], cwd=ROOT, env=self.env,
                                          stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def cpu(self) -> float:
        return tree_cpu(self.popen.pid) if self.popen else 0.0

    def rss(self) -> int:
        return tree_rss(self.popen.pid) if self.popen else 0

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 90) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


def postgres_pid(cluster: Cluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


# -- the rig ---------------------------------------------------------------------------------------------------

@dataclass
class Rig:
    cluster: Cluster
    s3: S3Server
    site: DemoSite
    work: Path
    engine: Engine

    @property
    def sources_dir(self) -> Path:
        return self.work / "sources"

    def env(self, name: str, slots: int, extra: dict[str, str] | None = None) -> dict[str, str]:
        data_dir = self.work / name
        data_dir.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTWATCH_")}
        env |= {"LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SOURCES_DIR": str(self.sources_dir),
                "LISTWATCH_SETTINGS": str(self.work / "none.yaml"), "LISTWATCH_CATALOG_URL": self.cluster.url,
                "LISTWATCH_LOG_LEVEL": "WARNING", "LISTWATCH_SCHEDULER__MAX_CRAWLS": str(slots),
                "LISTWATCH_SCHEDULER__JITTER": "0", **self.s3.settings_env(BUCKET)}
        return env | (extra or {})

    def write_sources(self, count: int, quick: str | None) -> None:
        self.sources_dir.mkdir(exist_ok=True)
        for i in range(count):
            page = "index.html" if i == 0 else f"index_{i}.html"
            body = listing_source(f"bench-{i:04d}", f"bench listing {i}", f"{self.site.url}/bench/list/{page}",
                                  schedule={"quick": quick, "full": "1d", "quick_pages": 1, "jitter": 0})
            (self.sources_dir / f"bench-{i:04d}.yaml").write_text(body, encoding="utf-8")

    def scalar(self, sql: str) -> int:
        return int(self.scalar_float(sql))

    def scalar_float(self, sql: str) -> float:
        with self.engine.connect() as conn:
            return float(conn.execute(text(sql)).scalar() or 0)

    def completed(self, kind: str) -> int:
        return self.scalar(f"SELECT count(*) FROM crawl_runs WHERE kind = '{kind}' AND status = 'complete'")

    def unfinished(self, kind: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT status, count(*) FROM crawl_runs WHERE kind = :k GROUP BY status"),
                                {"k": kind})
            return {status: int(n) for status, n in rows}

    def tables(self) -> list[tuple[str, int, int]]:
        """The largest tables: name, bytes (with indexes and TOAST), live rows."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT relname, pg_total_relation_size(relid), n_live_tup "
                                     "FROM pg_stat_user_tables ORDER BY 2 DESC LIMIT 8"))
            return [(str(name), int(size), int(live)) for name, size, live in rows]

    def store_bytes(self) -> int:
        assert self.s3.data_dir is not None
        return sum(p.stat().st_size for p in (self.s3.data_dir / BUCKET).rglob("*") if p.is_file())


@contextmanager
def rig(sources: int) -> Iterator[Rig]:
    with ExitStack() as stack:
        cluster = stack.enter_context(postgres_cluster())
        s3 = stack.enter_context(rclone_server())
        s3.make_bucket(BUCKET)
        site = stack.enter_context(DemoSite(bench_pages=sources))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lw-bench-workers-")))
        open_catalog(cluster.url).engine.dispose()   # migrated once, before several processes open it
        engine = create_engine(cluster.url, pool_size=2)
        stack.callback(engine.dispose)
        yield Rig(cluster, s3, site, work, engine)


def wait_until(check: Callable[[], bool], timeout: float, what: str, procs: list[Proc]) -> None:
    deadline = time.monotonic() + timeout
    while True:
        dead = [p for p in procs if not p.alive()]
        if dead:
            raise SystemExit(f"{dead[0].argv} exited while waiting for {what}; log {dead[0].log}:\n"
                             f"{dead[0].log.read_text(errors='replace')[-3000:]}")
        if check():
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(2)


# -- phases ------------------------------------------------------------------------------------------------------

def warm_up(r: Rig, sources: int, slots: int, quick: str, timeout: float) -> dict[str, float]:
    """Every source's first full crawl by a single-machine scheduler; then the quick schedule is switched on."""
    r.write_sources(sources, quick=None)
    sched = Proc(["run"], r.env("warmup", slots), r.work / "warmup.log").start()
    started, cpu0, pg0 = time.monotonic(), 0.0, tree_cpu(postgres_pid(r.cluster))
    try:
        wait_until(lambda: r.completed("full") >= sources, timeout, f"{sources} first full crawls", [sched])
        seconds, cpu = time.monotonic() - started, sched.cpu() - cpu0
        pg = tree_cpu(postgres_pid(r.cluster)) - pg0
    finally:
        sched.stop()
    r.write_sources(sources, quick=quick)
    return {"seconds": seconds, "cpu": cpu, "pg": pg, "runs": r.completed("full"),
            "catalog": r.scalar("SELECT pg_database_size(current_database())"), "store": r.store_bytes()}


def measure(r: Rig, workers: int, slots: int, settle: float, window: float) -> dict[str, float]:
    if workers == 0:
        sched = Proc(["run"], r.env("single", slots), r.work / "single.log")
        pool: list[Proc] = []
    else:
        sched = Proc(["run"], r.env("scheduler", slots, DISTRIBUTED_ENV), r.work / f"scheduler-{workers}.log")
        pool = [Proc(WORKER_ARGV, r.env(f"worker-{i}", slots, DISTRIBUTED_ENV), r.work / f"worker-{i}.log")
                for i in range(workers)]
    procs = [sched.start(), *(p.start() for p in pool)]
    try:
        time.sleep(settle)
        wait_until(lambda: True, 0, "the processes to start", procs)   # fails if one has exited
        pg_pid = postgres_pid(r.cluster)
        before = (time.monotonic(), r.completed("quick"), sched.cpu(), sum(p.cpu() for p in pool), tree_cpu(pg_pid),
                  r.scalar("SELECT pg_database_size(current_database())"), r.store_bytes())
        time.sleep(window)
        after = (time.monotonic(), r.completed("quick"), sched.cpu(), sum(p.cpu() for p in pool), tree_cpu(pg_pid),
                 r.scalar("SELECT pg_database_size(current_database())"), r.store_bytes())
        load = os.getloadavg()[0]
        rss = (sum(p.rss() for p in pool) if pool else sched.rss()) / len(pool or [sched])
        duration = r.scalar_float("SELECT avg(extract(epoch FROM finished_at - started_at)) FROM crawl_runs "
                                  "WHERE kind = 'quick' AND status = 'complete'")
    finally:
        for proc in reversed(procs):
            proc.stop()
    seconds, checks, sched_cpu, worker_cpu, pg_cpu, catalog, store = (a - b for a, b in zip(after, before,
                                                                                              strict=True))
    return {"workers": workers, "seconds": seconds, "checks": checks, "scheduler_cpu": sched_cpu,
            "worker_cpu": worker_cpu, "pg_cpu": pg_cpu, "catalog": catalog, "store": store, "load": load,
            "duration": duration, "rss": rss,
            "statuses": r.unfinished("quick")}  # type: ignore[dict-item]


# -- report ------------------------------------------------------------------------------------------------------

def per_check(value: float, checks: float) -> str:
    return f"{value / checks:.3f}" if checks else "—"


def report(warm: dict[str, float], results: list[dict[str, float]], sources: int) -> None:
    print(f"\nwarm-up: {warm['runs']:.0f} first full crawls in {warm['seconds']:.0f} s "
          f"({warm['cpu'] / max(warm['runs'], 1):.2f} CPU-s each in the scheduler and its crawls, "
          f"{warm['pg'] / max(warm['runs'], 1):.3f} in PostgreSQL); catalog {warm['catalog']:,} bytes, "
          f"store {warm['store']:,} bytes")
    one = next((r for r in results if r["workers"] == 1), None)
    print(f"\nunchanged quick checks of {sources} sources (checks completed in the window)")
    print(f"  {'workers':>7} {'window s':>9} {'checks':>7} {'per 15 min':>11} {'vs 1 worker':>12} "
          f"{'CPU-s/check: workers':>21} {'scheduler':>10} {'postgres':>9} {'catalog B/check':>16} "
          f"{'store B/check':>14} {'run s':>6} {'MB each':>8} {'load':>5}")
    for r in results:
        rate = r["checks"] / r["seconds"] * PERIOD if r["seconds"] else 0.0
        ratio = (f"{rate / (one['checks'] / one['seconds'] * PERIOD):.2f}"
                 if one and one["checks"] and r["workers"] else "—")
        print(f"  {r['workers']:>7.0f} {r['seconds']:>9.0f} {r['checks']:>7.0f} {rate:>11,.0f} {ratio:>12} "
              f"{per_check(r['worker_cpu'], r['checks']):>21} {per_check(r['scheduler_cpu'], r['checks']):>10} "
              f"{per_check(r['pg_cpu'], r['checks']):>9} {per_check(r['catalog'], r['checks']):>16} "
              f"{per_check(r['store'], r['checks']):>14} {r['duration']:>6.2f} {r['rss'] / 1e6:>8.0f} "
              f"{r['load']:>5.1f}")
    print("  0 workers = single-machine `listwatch run` crawling itself: its CPU column includes the crawls.\n"
          "  run s = mean wall time of a quick run (started → finished in crawl_runs, all runs so far);\n"
          "  MB each = resident memory of one worker (0: of `run`) with its crawl processes, at the window's end.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--workers", default="0,1,2,3", help="comma-separated worker counts (0 = single machine)")
    parser.add_argument("--slots", type=int, default=4, help="crawl slots (max_crawls) of each worker / of run")
    parser.add_argument("--warm-slots", type=int, default=8, help="crawl slots for the warm-up's full crawls")
    parser.add_argument("--quick", default="20s", help="quick schedule of every source after the warm-up")
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--warm-timeout", type=float, default=3600.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    if any(counts) and not worker_available():
        print("`listwatch worker` is not available in this checkout: measuring the 0-worker reference only")
        counts = [n for n in counts if n == 0]
    print(f"bench_workers: {args.sources} sources, slots {args.slots}, windows {args.window:.0f} s; "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with rig(args.sources) as r:
        empty = r.scalar("SELECT pg_database_size(current_database())")   # migrated schema, no data
        warm = warm_up(r, args.sources, args.warm_slots, args.quick, args.warm_timeout)
        results = [measure(r, n, args.slots, args.settle, args.window) for n in counts]
        runs = r.scalar("SELECT count(*) FROM crawl_runs")
        size = r.scalar("SELECT pg_database_size(current_database())")
        tables = r.tables()
    report(warm, results, args.sources)
    print(f"\ncatalog at the end: {size:,} bytes ({empty:,} of it the empty schema) for {runs:,} runs: "
          f"{(size - empty) / max(runs, 1):,.0f} bytes a run; largest tables:")
    for name, table_bytes, live in tables:
        print(f"  {name:28} {table_bytes:>12,} bytes {live:>9,} rows")


def worker_available() -> bool:
    done = subprocess.run([sys.executable, "-m", "scheduler", *WORKER_ARGV, "--help"], cwd=ROOT,
                          capture_output=True, timeout=120, check=False)
    return done.returncode == 0


if __name__ == "__main__":
    main()
