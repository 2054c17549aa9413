"""What an unchanged quick check costs against a source's first full crawl, and what that allows.

    .venv/bin/python -m tests.benchmarks.bench_checks [--rounds 3] [--bench-pages 200]

For the demo ``mofcom`` source (3 listing pages, 25 detail pages, attachments) and a bench source of many
listing pages, in one run: the first full crawl, then ``--rounds`` quick checks of the unchanged site, each as
the scheduler runs them (``python -m scheduler crawl SOURCE --kind …`` in its own process, catalog and spool on
disk). Figures: HTTP requests the site answered, WARC bytes written, wall time of the process and of the crawl
itself (from the run report). From the quick-check median, an estimate of how many sources one 2-core machine
can check every 15 minutes (assumptions printed with it).

This measures one check per process, the way the scheduler runs browser sources (and every source with
``crawl_hosts: 0``). Static sources go through long-lived crawl hosts: ``bench_scheduler`` measures both ways
through ``listwatch run`` itself, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from crawlers.demo.site import DemoSite
from tests.listing_sources import listing_source

ROOT = Path(__file__).resolve().parents[2]
MOFCOM = ROOT / "crawlers" / "demo" / "sources" / "mofcom.yaml"
BENCH = listing_source("bench-many", "bench listing of many pages", "${LISTWATCH_DEMO_URL}/bench/list/index.html",
                       pages=100000, concurrency=16, limits={"max_pages": 100000},
                       schedule={"quick": "15m", "full": "6h", "quick_pages": 2})
PERIOD = 900
CORES = 2


def crawl(source: Path, kind: str, data_dir: Path, site: DemoSite) -> dict[str, Any]:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SETTINGS": str(data_dir / "none.yaml"),
           "LISTWATCH_DEMO_URL": site.url, "LISTWATCH_LOG_LEVEL": "WARNING"}
    hits_before = sum(site.hits.values())
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scheduler", "crawl", str(source), "--kind", kind, "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    wall = time.perf_counter() - started
    try:
        [report] = json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"crawl failed (exit {done.returncode}):\n{done.stderr[-3000:]}") from None
    crawl_s = (datetime.fromisoformat(report["finished"]) - datetime.fromisoformat(report["started"])).total_seconds()
    return {"requests": sum(site.hits.values()) - hits_before, "bytes": report["warc_bytes"], "wall": wall,
            "crawl": crawl_s, "items": report["items"], "status": report["status"]}


def startup_cost(data_dir: Path) -> float:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SETTINGS": str(data_dir / "none.yaml")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import scheduler.pipeline, crawlers.run"], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def measure(name: str, source: Path, site: DemoSite, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lw-bench-checks-") as tmp:
        data_dir = Path(tmp)
        full = crawl(source, "full", data_dir, site)
        quicks = [crawl(source, "quick", data_dir, site) for _ in range(rounds)]
        startup = statistics.median(startup_cost(data_dir) for _ in range(3))
    quick = {k: statistics.median(q[k] for q in quicks) for k in ("requests", "bytes", "wall", "crawl", "items")}
    return {"name": name, "full": full, "quick": quick, "startup": startup,
            "quick_status": sorted({q["status"] for q in quicks})}


def show(result: dict[str, Any]) -> None:
    full, quick = result["full"], result["quick"]
    print(f"\n{result['name']}  (first full crawl → unchanged quick check, median; quick status "
          f"{', '.join(result['quick_status'])})")
    print(f"  {'':22}{'full':>14}{'quick':>14}{'quick/full':>12}")
    for key, label, fmt in (("requests", "HTTP requests", "{:,.0f}"), ("bytes", "WARC bytes stored", "{:,.0f}"),
                            ("wall", "wall time, process s", "{:.2f}"), ("crawl", "wall time, crawl s", "{:.2f}"),
                            ("items", "items yielded", "{:,.0f}")):
        ratio = quick[key] / full[key] if full[key] else 0.0
        print(f"  {label:22}{fmt.format(full[key]):>14}{fmt.format(quick[key]):>14}{ratio:>12.3f}")
    print(f"  process start-up (imports only): {result['startup']:.2f} s")


def estimate(result: dict[str, Any]) -> None:
    quick_wall = result["quick"]["wall"]
    per_period = CORES * PERIOD / quick_wall
    print(f"\nEstimate from {result['name']}: one unchanged quick check ≈ {quick_wall:.2f} s of one core "
          f"(process start-up {result['startup']:.2f} s of it), so {CORES} cores × {PERIOD} s / {quick_wall:.2f} s "
          f"≈ {per_period:,.0f} sources checked every 15 minutes with max_crawls={CORES}.")
    print("Assumptions: static (non-browser) listings; the check is CPU-bound (loopback site, so network latency\n"
          "is not counted: on real sites a check also waits on the network, which costs wall time but not CPU,\n"
          "so max_crawls may then exceed the core count); one process per check, as the scheduler runs them;\n"
          "SQLite catalog on local disk; no new programmes (a check that finds some also fetches their pages).\n"
          "Browser-rendered sources cost several times more (Chromium start-up and rendering).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bench-pages", type=int, default=200)
    args = parser.parse_args()
    with DemoSite(bench_pages=args.bench_pages) as site, tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench.yaml"
        bench.write_text(BENCH, encoding="utf-8")
        results = [measure("demo-mofcom (3 listing pages, 25 details, attachments)", MOFCOM, site, args.rounds),
                   measure(f"bench-many ({args.bench_pages} listing pages, no details)", bench, site, args.rounds)]
    for result in results:
        show(result)
    estimate(max(results, key=lambda r: r["quick"]["wall"]))


if __name__ == "__main__":
    main()
