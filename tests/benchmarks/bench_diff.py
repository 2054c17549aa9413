"""Benchmark: diff a 2,000-item crawl against a source with 200,000 known programmes (target ≤ 1 s).

Seeds a SQLite catalog (one source: N programmes, of which 2,000 are listed and the rest removed long
ago — the shape of a long-watched listing), then times ``apply_crawl`` for one complete crawl with 20
new, 20 changed and 10 missing programmes, and measures the tracemalloc peak. The same at 20,000 known
programmes shows that memory follows the crawl, not the archive.

    .venv/bin/python -m tests.benchmarks.bench_diff
"""

from __future__ import annotations

import shutil
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from archive.catalog.db import open_catalog
from archive.catalog.models import Program, Source
from archive.programs import apply_crawl

LISTED = 2_000
SOURCE = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
REPORT = {"source_id": SOURCE, "run_id": "r2", "pages_ok": {"listing": 100, "detail": LISTED},
          "pages_failed": {"listing": 0}, "pagination_finished": True, "stop_reason": "finished",
          "problems": [], "challenges": []}


def key(i: int) -> str:
    return f"https://example.gov.cn/notices/{i:07d}.html"


def fields(i: int, edited: bool = False) -> dict[str, Any]:
    return {"title": f"2026年发展中国家第{i}期官员研修班", "url": key(i), "date": "2026-01-05",
            "organizer": "商务部", "deadline": "2026-03-15" if edited else "2026-03-01", "location": "北京市朝阳区"}


def seed(url: str, known: int) -> None:
    catalog = open_catalog(url)
    with catalog.session() as s:
        s.add(Source(id=SOURCE, name=SOURCE, created_at=T0))
    rows = []
    for i in range(known):
        active = i >= known - LISTED
        rows.append({"source_id": SOURCE, "key": key(i), "title": f"T{i}", "fields": fields(i),
                     "status": "active" if active else "removed", "first_seen": T0, "last_seen": T0,
                     "missing_runs": 0 if active else 2, "last_record_id": f"<urn:uuid:{i}>", "removal_reason": "",
                     "search_text": f"t{i}", "last_seen_run": "r1"})
        if len(rows) == 20_000:
            with catalog.session() as s:
                s.execute(insert(Program), rows)
            rows = []
    if rows:
        with catalog.session() as s:
            s.execute(insert(Program), rows)
    catalog.dispose()


def crawl(known: int) -> list[dict[str, Any]]:
    """The listed 2,000, minus 10 gone, plus 20 new; 20 edited."""
    first = known - LISTED
    ids = [i for i in range(first + 10, known)] + [known + j for j in range(20)]
    return [{"source": SOURCE, "key": key(i), "fields": fields(i, edited=i < first + 30),
             "listing_page": 1 + n // 20, "position": n % 20, "listing_record": f"<urn:uuid:L{n // 20}>",
             "detail": {"url": key(i), "status": 200, "record": f"<urn:uuid:D{i}>", "gone": None, "text": "…"}}
            for n, i in enumerate(ids)]


def _apply(path: Path, known: int, trace: bool) -> tuple[float, float, dict[str, int]]:
    catalog = open_catalog(f"sqlite:///{path}", migrate=False)
    items = crawl(known)
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    events = apply_crawl(catalog, source_id=SOURCE, run_id="r2", kind="full", report=REPORT, items=items,
                         now=T0 + timedelta(days=1))
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 1e6 if trace else 0.0
    tracemalloc.stop()
    catalog.dispose()
    counts: dict[str, int] = {}
    for e in events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return elapsed, peak, counts


def measure(known: int) -> tuple[float, float, dict[str, int]]:
    """(seconds without tracing, tracemalloc peak MB on a copy of the same catalog, events)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        seed(f"sqlite:///{path}", known)
        shutil.copy(path, Path(tmp) / "copy.sqlite")
        elapsed, _, counts = _apply(path, known, trace=False)
        _, peak, _ = _apply(Path(tmp) / "copy.sqlite", known, trace=True)
        return elapsed, peak, counts


def main() -> None:
    print(f"apply_crawl of a {LISTED:,}-item complete crawl (SQLite, one transaction)")
    for known in (20_000, 200_000):
        elapsed, peak, counts = measure(known)
        print(f"  {known:>7,} known programmes: {elapsed:6.3f} s (target ≤ 1 s)  "
              f"tracemalloc peak {peak:5.1f} MB  events {counts}")


if __name__ == "__main__":
    main()
