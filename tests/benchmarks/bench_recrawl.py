"""Re-crawl cost: WARC bytes stored by a full re-crawl of an unchanged site vs its first crawl.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_recrawl --pages 2000

Both crawls are the real thing (``python -m scheduler crawl``: crawl, index, store) over the demo site's
``/bench/list/`` section, sharing one data directory, so the second crawl sends conditional GETs from the
first crawl's validators and writes ``revisit`` records. The target (issue 3) is ≤ 10 % of the bytes.
A quick check (first pages only, stopping at a page without new programmes) is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crawlers.demo.site import DemoSite
from tests.benchmarks.bench_capture import static_source

ROOT = Path(__file__).resolve().parents[2]
TARGET = 0.10


def crawl(source: Path, data_dir: Path, kind: str = "full") -> tuple[dict[str, Any], float]:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_LOG_LEVEL": "WARNING",
           "LISTWATCH_SETTINGS": str(data_dir / "none.yaml")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scheduler", "crawl", "--json", "--kind", kind, str(source)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=3600)
    elapsed = time.perf_counter() - started
    try:
        return json.loads(done.stdout)[0], elapsed
    except (json.JSONDecodeError, IndexError):
        raise SystemExit(f"crawl failed (exit {done.returncode}):\n{done.stderr[-3000:]}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--page-kb", type=int, nargs="+", default=[0, 40],
                        help="pad pages with this many KB of varied text (0 = the plain ~6 KB demo page)")
    args = parser.parse_args(argv)
    for page_kb in args.page_kb:
        run(args.pages, page_kb)


def run(pages: int, page_kb: int) -> None:
    with tempfile.TemporaryDirectory(prefix="listwatch-recrawl-") as tmp, \
            DemoSite(bench_pages=pages, bench_page_kb=page_kb) as site:
        work = Path(tmp)
        source = work / "bench.yaml"
        source.write_text(static_source(site.url, pages), encoding="utf-8")
        rows = []
        for label, kind in (("first full crawl", "full"), ("unchanged full re-crawl", "full"),
                            ("unchanged quick check", "quick")):
            hits_before = sum(site.hits.values())
            report, seconds = crawl(source, work / "data", kind)
            rows.append((label, report, seconds, sum(site.hits.values()) - hits_before))
        first = rows[0][1]["warc_bytes"]
        weight = f"+{page_kb} KB of varied text" if page_kb else "plain demo pages"
        print(f"== Re-crawl cost: {pages} static listing pages x 20 items ({weight}) ==")
        for label, report, seconds, requests in rows:
            ratio = report["warc_bytes"] / first if first else 0.0
            print(f"  {label:26s} {report['warc_bytes']:>12,} WARC bytes  {ratio:6.3f}x of first   "
                  f"{requests:>6} requests  {seconds:7.1f} s wall  items {report['items']}")
        ratio = rows[1][1]["warc_bytes"] / first
        print(f"  RATIO re-crawl / first crawl (WARC bytes) = {ratio:.3f}; target <= {TARGET}: "
              f"{'PASS' if ratio <= TARGET else 'FAIL'}")


if __name__ == "__main__":
    main()
