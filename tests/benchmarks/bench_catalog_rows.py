"""What an unchanged quick check leaves in a PostgreSQL catalog: tables, rows and bytes per check, by column.

    .venv/bin/python -m tests.benchmarks.bench_catalog_rows [--sources 40] [--rounds 5]

Real parts (the rig of ``bench_workers``): a throwaway PostgreSQL cluster, ``rclone serve s3``, the demo site's
one-page listings (20 programmes, answered 304 to a conditional GET). The checks go through the scheduler's own
path, :class:`scheduler.runner.CrawlRunner` (crawl hosts, run row, log tail, ingest, store), ``--sources`` at a
time in threads: one full crawl of each source, then ``--rounds`` rounds of quick checks that find nothing new.

Output, per unchanged check: rows added and on-disk growth of each table (heap + TOAST + indexes, from
``pg_total_relation_size`` after ``VACUUM``), then the average stored size of each column of those rows
(``pg_column_size``), so the largest parts are named. Not a timing: the figures do not depend on the load.

Then retention (``archive/retention.py``): the checks' rows are moved 40 days back and pruned as the scheduler's
retention pass prunes them; printed: what was pruned and kept, what a pruned check leaves (its share of the
``check_days`` row), and the steady daily growth of a source checked every 15 minutes (96 checks a day, the
first and last kept whole). Deleted rows free space PostgreSQL reuses for new rows (``VACUUM``), so the tables do
not shrink on disk: what retention bounds is the growth.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from archive.catalog import Catalog, open_catalog
from archive.retention import prune_unchanged
from crawlers.sources import load_source
from scheduler.runner import CrawlRunner
from scheduler.settings import load_settings
from tests.benchmarks.bench_workers import Rig, rig

COLUMNS = {   # per table: the rows one check adds (:runs = the quick runs measured)
    "crawl_runs": "id IN :runs",
    "captures": "run_id IN :runs",
    "warc_files": "run_id IN :runs",
}


def check_all(runner: CrawlRunner, paths: list[Path], kind: str) -> list[str]:
    """One check of every source, at once in threads (as the scheduler's job threads run them)."""
    run_ids: list[str] = []
    lock = threading.Lock()

    def one(path: Path) -> None:
        result = runner.run(load_source(path), path, kind)
        with lock:
            run_ids.append(result.run_id)
        assert result.status == "complete", (path.name, result.status, result.reason)

    threads = [threading.Thread(target=one, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return run_ids


def table_sizes(engine: Engine) -> dict[str, tuple[int, int]]:
    """table → (rows, bytes with TOAST and indexes), after VACUUM so the sizes are the tables' own."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM"))
        names = [r[0] for r in conn.execute(text("SELECT relname FROM pg_stat_user_tables"))]
        return {name: (int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar() or 0),
                       int(conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": name}).scalar() or 0))
                for name in names}


def column_sizes(engine: Engine, table: str, where: str, runs: list[str]) -> list[tuple[str, float]]:
    """Average stored bytes of each column of the rows ``where`` selects, largest first; '(row)' = whole row."""
    from sqlalchemy import bindparam

    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT column_name FROM information_schema.columns "
                                                 "WHERE table_name = :t ORDER BY ordinal_position"), {"t": table})]
        parts = ", ".join(["avg(pg_column_size(t.*))"] + [f'avg(pg_column_size(t."{n}"))' for n in names])
        query = text(f"SELECT {parts} FROM {table} t WHERE {where}").bindparams(bindparam("runs", expanding=True))
        row = conn.execute(query, {"runs": runs}).one()
    sizes = [("(row)", float(row[0] or 0))] + [(n, float(v or 0)) for n, v in zip(names, row[1:], strict=True)]
    return sorted(sizes, key=lambda s: -s[1])


def report_keys(engine: Engine, runs: list[str]) -> list[tuple[str, float]]:
    """crawl_runs.report (JSON): average characters of each top-level key's value in the measured runs."""
    from sqlalchemy import bindparam

    query = text("SELECT e.key, avg(length(e.value::text)) FROM crawl_runs r, json_each(r.report) e "
                 "WHERE r.id IN :runs GROUP BY e.key ORDER BY 2 DESC").bindparams(bindparam("runs", expanding=True))
    with engine.connect() as conn:
        return [(str(k), float(v)) for k, v in conn.execute(query, {"runs": runs})]


def report(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], checks: int,
           r: Rig, runs: list[str]) -> None:
    print(f"\nper unchanged quick check ({checks} checks):")
    print(f"{'table':24} {'rows':>7} {'bytes on disk':>14}")
    total = 0.0
    for name in sorted(after, key=lambda n: -(after[n][1] - before.get(n, (0, 0))[1])):
        rows = (after[name][0] - before.get(name, (0, 0))[0]) / checks
        size = (after[name][1] - before.get(name, (0, 0))[1]) / checks
        total += size
        if rows or size:
            print(f"{name:24} {rows:7.2f} {size:14,.0f}")
    print(f"{'total':24} {'':7} {total:14,.0f}")
    for table, where in COLUMNS.items():
        sizes = column_sizes(r.engine, table, where, runs)
        print(f"\n{table}: average stored bytes per row, by column (heap row, before indexes)")
        print("  " + ", ".join(f"{n} {v:,.0f}" for n, v in sizes if v >= 8))
    keys = report_keys(r.engine, runs)
    print("\ncrawl_runs.report: average characters per key (JSON text, key names not included)")
    print("  " + ", ".join(f"{k} {v:,.0f}" for k, v in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with rig(args.sources) as r:
        r.write_sources(args.sources, "1d")
        os.environ.update(r.env("bench", 8, {"LISTWATCH_SCHEDULER__CRAWL_HOSTS": "1",
                                             "LISTWATCH_SCHEDULER__HOST_CRAWLS": "8"}))
        settings = load_settings()
        catalog = open_catalog(settings.catalog)
        runner = CrawlRunner(settings, catalog)
        paths = sorted(r.sources_dir.glob("*.yaml"))
        try:
            check_all(runner, paths, "full")
            before = table_sizes(r.engine)
            runs = [run for _ in range(args.rounds) for run in check_all(runner, paths, "quick")]
            after = table_sizes(r.engine)
        finally:
            runner.close()
        report(before, after, len(runs), r, runs)
        retention(r, catalog, before, after, runs)
        catalog.dispose()


def retention(r: Rig, catalog: Catalog, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
              runs: list[str]) -> None:
    """Prune the measured checks as ``retention.unchanged_days: 30`` would 40 days on; print what is left."""
    with r.engine.begin() as conn:
        conn.execute(text("UPDATE crawl_runs SET started_at = started_at - interval '40 days', "
                          "finished_at = finished_at - interval '40 days'"))
    result = prune_unchanged(catalog, older_than_days=30)
    pruned = table_sizes(r.engine)
    per_check = sum(size - before.get(name, (0, 0))[1] for name, (_rows, size) in after.items()) / len(runs)
    on_disk = (pruned["check_days"][1] - after["check_days"][1]) / max(result.checks, 1)
    entry = r.scalar_float("SELECT sum(length(e::text) + 1) FROM check_days, json_array_elements(warcs) e") / max(
        result.checks, 1)
    print(f"\nretention (40 days on, unchanged_days 30): {result.checks} checks pruned, {result.kept} kept (first and "
          f"last of each source's day), {result.captures} captures and {result.warc_files} warc_files rows deleted")
    print(f"  a pruned check leaves {on_disk:,.0f} B on disk in check_days here ({result.checks} checks in "
          f"{pruned['check_days'][0]} source-day rows; at 94 a row the row's own part is shared more), of which "
          f"{entry:,.0f} B of JSON are its WARC's key, size and SHA-256")
    daily = 2 * per_check + 94 * on_disk
    print(f"  a source checked every 15 min, per day: 2 checks kept x {per_check:,.0f} + 94 pruned x {on_disk:,.0f} "
          f"= {daily:,.0f} B ({daily / 96:,.0f} B per check) instead of 96 x {per_check:,.0f} = {96 * per_check:,.0f}")

if __name__ == "__main__":
    main()
