"""Captures-of-a-URL lookups over 1,000,000 captures in SQLite, and bytes transferred per record retrieval.

    .venv/bin/python -m tests.benchmarks.bench_lookup [--captures N]

Targets (issue 3): lookup p95 ≤ 20 ms; a record retrieval transfers ≤ 2× the record's length. Ratios are
against baselines measured in the same run: a primary-key lookup, and downloading the whole WARC.
"""

from __future__ import annotations

import argparse
import gzip
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from archive.catalog import open_catalog
from archive.catalog.models import Capture
from archive.cdx import query_captures
from archive.indexer import register_warc, safe_surt
from archive.records import RecordBuilder
from archive.retrieval import read_record
from archive.storage import LocalStorage

HOSTS, PATHS, STAMPS = 1000, 100, 10


def seed(url: str, total: int) -> tuple[Any, list[str]]:
    catalog = open_catalog(url)
    stamps = max(1, total // (HOSTS * PATHS))
    raw = catalog.engine.raw_connection()
    cur = raw.cursor()
    cur.execute("BEGIN")
    cur.execute("INSERT INTO warc_files (id, name, source_id, key, size, sha256, state, created_at, problem) "
                "VALUES (1, 'bench.warc.gz', 'bench', 'bench/bench.warc.gz', 0, '', 'stored', '2026-01-01', '')")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    urls, n, batch = [], 0, []
    sql = ("INSERT INTO captures (warc_file_id, record_id, record_type, url, surt, timestamp, status, mime, "
           "payload_digest, offset, length, source_id) VALUES (1,?,?,?,?,?,200,'text/html',?,?,?, 'bench')")
    for h in range(HOSTS):
        for p in range(PATHS):
            url_ = f"http://h{h}.example.org/section{p % 10}/page{p}.html"
            urls.append(url_)
            key = safe_surt(url_)
            for s in range(stamps):
                ts = (start + timedelta(days=s, seconds=h * 37 + p)).strftime("%Y%m%d%H%M%S") + "000000"
                batch.append((f"<urn:uuid:{n:032x}>", "response" if s == 0 else "revisit", url_, key, ts,
                              f"sha256:{p:052d}", n * 1000, 900))
                n += 1
        if len(batch) >= 50_000:
            cur.executemany(sql, batch)
            batch.clear()
    cur.executemany(sql, batch)
    cur.execute("COMMIT")
    cur.execute("ANALYZE")
    raw.close()
    return catalog, urls


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def report(name: str, values: list[float], base: list[float] | None = None) -> None:
    p50, p95 = statistics.median(values), pct(values, 95)
    ratio = f"  ({p95 / pct(base, 95):.1f}× the primary-key p95)" if base else ""
    print(f"  {name:<34} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms{ratio}")


class Counting:
    def __init__(self, inner: LocalStorage) -> None:
        self.inner, self.bytes, self.calls = inner, 0, 0

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        data = self.inner.read_range(key, offset, length)
        self.bytes += len(data)
        self.calls += 1
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def retrieval(tmp: Path) -> None:
    builder = RecordBuilder()
    rng = random.Random(7)
    path = tmp / "spool" / "bench-20260101T000000Z-abcdef-00001.warc.gz"
    path.parent.mkdir(parents=True)
    with path.open("wb") as fh:
        fh.write(gzip.compress(builder.to_bytes(builder.warcinfo(path.name, {"software": "bench"}))))
        for i in range(300):
            body = rng.randbytes(rng.randint(2_000, 200_000))
            record = builder.response(f"http://bench.example.org/file{i}.bin", 200,
                                      [("Content-Type", "application/octet-stream")], body)
            fh.write(gzip.compress(builder.to_bytes(record)))
    catalog = open_catalog(f"sqlite:///{tmp / 'records.sqlite'}")
    store = LocalStorage(tmp / "store")
    warc = register_warc(catalog, path, source_id="bench")
    store.put_file(warc.key, path, sha256=warc.sha256)
    counting = Counting(store)
    with catalog.session() as session:
        captures = list(session.scalars(select(Capture)))
    lengths, times = 0, []
    for capture in captures:
        t = time.perf_counter()
        read_record(catalog, counting, capture.record_id)  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1000)
        lengths += capture.length
    whole = warc.size * len(captures)
    print(f"\nRecord retrieval: {len(captures)} records of {warc.size / 1e6:.1f} MB WARC, one ranged read each "
          f"({counting.calls} reads)")
    print(f"  transferred / record length      {counting.bytes / lengths:.3f}×   (target ≤ 2×)")
    print(f"  vs whole-file download baseline  {counting.bytes / whole:.4f}× the bytes")
    report("read_record (digest-checked)", times)
    catalog.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captures", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="listwatch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        catalog, urls = seed(f"sqlite:///{tmp / 'catalog.sqlite'}", args.captures)
        with catalog.session() as session:
            count = session.execute(select(Capture.id).order_by(Capture.id.desc()).limit(1)).scalar_one()
        print(f"Seeded {count:,} captures ({HOSTS} hosts × {PATHS} paths × {count // (HOSTS * PATHS)} times) "
              f"in {time.perf_counter() - t:.1f} s")
        rng = random.Random(1)
        picks = [rng.choice(urls) for _ in range(args.lookups)]
        ids = [rng.randint(1, count) for _ in range(args.lookups)]
        it_pk, it_exact, it_prefix, it_host = iter(ids), iter(picks), iter(picks), iter(picks)

        def pk() -> None:
            with catalog.session() as session:
                session.get(Capture, next(it_pk))

        base = timed(pk, args.lookups)
        exact = timed(lambda: query_captures(catalog, next(it_exact)), args.lookups)
        prefix = timed(lambda: query_captures(catalog, next(it_prefix).rsplit("/", 1)[0] + "/*"), args.lookups)
        host = timed(lambda: query_captures(catalog, next(it_host), match="host", limit=100), args.lookups)
        print(f"\nLookups ({args.lookups} each, random URLs; target p95 ≤ 20 ms):")
        report("primary-key get (baseline)", base)
        report("exact URL (≈10 captures)", exact, base)
        report("prefix host/sectionN/* (≈100)", prefix, base)
        report("host, limit=100", host, base)
        catalog.dispose()
        retrieval(tmp)


if __name__ == "__main__":
    main()
