"""Unchanged re-crawls and quick checks against an S3 store with real latency, against the same with the spool.

Run from the repository root (one command; a few minutes on 2 cores)::

    .venv/bin/python -m tests.benchmarks.bench_remote_store [--latency-ms 20] [--rounds 2] [--quick 5]
                                                            [--kb 6] [--store rclone|moto] [--ab CHECKOUT]

In production ``archive.spool.sync`` deletes each spool WARC once it is uploaded and verified, so an unchanged
page's earlier extraction (its ``urn:items:`` metadata record) is read back from the store. Here the store is a
real S3 server on loopback (``rclone serve s3`` by default) behind ``tests.store_proxy.StoreProxy``, which adds
``--latency-ms`` each way to every request and response (a round trip of twice that, plus one for each new
connection's handshake) and counts the requests by kind. The site is ``bench_crawl``'s (100 listing pages x 19
items, 1,900 detail pages, ETag/Last-Modified and 304s; ``--kb`` per page). Every crawl is the real command
(``python -m scheduler crawl SOURCE --kind full|quick --json``: crawl, index, programmes, sync to the store), in
its own process.

Same run:

1. A first full crawl, synced to the store through the proxy (the spool is then empty). Its data directory is
   the starting point of every variant below (each takes a fresh copy).
2. Unchanged full re-crawls, ``--rounds`` times each, in turn:
   - ``remote``: earlier extractions read from the store (the production case);
   - ``remote, no read-ahead``: the same with ``DedupIndex.read_ahead`` switched off (a bench-only patch in the
     crawl process, no setting);
   - ``local``: the spool still holds the first crawl's WARCs (copied back from the store) and the store is a
     local directory: the baseline without a network.
   - with ``--ab CHECKOUT`` (e.g. ``/work/main``), also ``remote`` with that checkout's listwatch (imported from
     there, same virtualenv): a change measured in the same run.
3. ``--quick`` unchanged quick checks for each variant but ``no read-ahead``, taking turns, the way the scheduler
   runs them for a static source: jobs sent to one long-lived crawl host (``python -m scheduler.crawlhost``, its
   JSON-lines protocol), each timed from the job sent to its ``done`` (crawl, ingest, sync, health check), with
   the host's CPU seconds per check. The host's first check (start-up, first connections) is not counted.

Per crawl: wall time of the process, the crawl's own seconds (its report's started → finished), CPU seconds of
the process (start-up, index and sync included), its peak RSS, and the store requests by kind during the crawl process
(``GET range`` are reads of earlier records; ``GET``/``HEAD``/``PUT`` come from the sync's upload and
read-back). Ratios are remote / local, medians of the rounds. The one-minute load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.catalog import open_catalog
from crawlers.run import new_run_id
from crawlers.sources import load_source
from scheduler.pipeline import start_run
from tests.benchmarks.bench_crawl import DETAIL
from tests.benchmarks.crawl_run import process_cpu
from tests.benchmarks.crawl_site import LISTING_PAGES, Site
from tests.listing_sources import listing_source
from tests.servers import S3Server, moto_server, rclone_server
from tests.store_proxy import StoreProxy

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ID = "bench-crawl"
NO_READ_AHEAD = ("import archive.dedup; archive.dedup.DedupIndex.read_ahead = lambda *_, **__: 0; "
                 "import runpy; runpy.run_module('scheduler', run_name='__main__')")


@dataclass
class Measured:
    wall: float
    crawl: float
    cpu: float
    requests: dict[str, int]
    report: dict[str, Any] = field(repr=False)
    rss_mb: float = 0.0   # peak RSS of the crawl process (0: not measured, a crawl host's check)

    def line(self, label: str) -> str:
        asked = ", ".join(f"{k} {v}" for k, v in sorted(self.requests.items()) if v)
        rss = f"  rss {self.rss_mb:4.0f} MB" if self.rss_mb else ""
        return (f"  {label:28s} wall {self.wall:6.2f} s  crawl {self.crawl:6.2f} s  cpu {self.cpu:6.2f} s{rss}  "
                f"items {self.report.get('items')}  status {self.report.get('status')}  store: {asked or '-'}")


def crawl(source: Path, env: dict[str, str], kind: str, proxy: StoreProxy, read_ahead: bool = True,
          code: Path = ROOT) -> Measured:
    """One ``python -m scheduler crawl`` process (of checkout ``code``), measured; its own rusage (CPU, peak RSS)
    from ``wait4``."""
    run = ["-m", "scheduler"] if read_ahead else ["-c", NO_READ_AHEAD]
    before, started = proxy.counts(), time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, *run, "crawl", str(source), "--kind", kind, "--json"], cwd=code,
                                   env={**env, "PYTHONPATH": str(code)}, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall, after = time.perf_counter() - started, proxy.counts()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    try:
        [report] = json.loads(stdout)
    except ValueError:
        raise SystemExit(f"crawl failed (exit {process.returncode}):\n{stderr[-3000:]}") from None
    seconds = (datetime.fromisoformat(report["finished"]) - datetime.fromisoformat(report["started"])).total_seconds()
    requests = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return Measured(wall, seconds, usage.ru_utime + usage.ru_stime, requests, report, usage.ru_maxrss / 1024)


class Host:
    """A crawl host process (``scheduler.crawlhost``) and its JSON-lines protocol, as the host pool drives it."""

    def __init__(self, env: dict[str, str], data_dir: Path, code: Path = ROOT) -> None:
        read_end, write_end = os.pipe()
        self.process = subprocess.Popen([sys.executable, "-m", "scheduler.crawlhost"], cwd=code, stdin=subprocess.PIPE,
                                        env={**env, "LISTWATCH_HOST_FD": str(write_end), "PYTHONPATH": str(code)},
                                        pass_fds=(write_end,), text=True, stderr=subprocess.DEVNULL)
        os.close(write_end)
        self.out = os.fdopen(read_end, encoding="utf-8")
        self.catalog = open_catalog(f"sqlite:///{data_dir / 'catalog.sqlite'}")
        self._wait("ready")

    def _wait(self, kind: str, run_id: str | None = None) -> dict[str, Any]:
        for line in self.out:
            message = json.loads(line)
            if kind in message and (run_id is None or message[kind] == run_id):
                return message  # type: ignore[no-any-return]
        raise SystemExit(f"the crawl host ended (exit {self.process.wait()})")

    def check(self, source: Path, proxy: StoreProxy) -> Measured:
        run_id = new_run_id()
        start_run(self.catalog, load_source(source), run_id, "quick")   # the scheduler records the run first
        before, cpu, started = proxy.counts(), process_cpu(self.process.pid), time.perf_counter()
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"run": run_id, "source": str(source), "kind": "quick"}) + "\n")
        self.process.stdin.flush()
        done = self._wait("done", run_id)
        wall, after = time.perf_counter() - started, proxy.counts()
        requests = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        return Measured(wall, wall, process_cpu(self.process.pid) - cpu, requests, {"status": done.get("status")})

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(60)
        self.out.close()


def environment(data_dir: Path, server: S3Server, bucket: str, proxy: StoreProxy, local: bool) -> dict[str, str]:
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(data_dir), "LISTWATCH_SETTINGS": str(data_dir / "none.yaml"),
           "LISTWATCH_LOG_LEVEL": "WARNING"}
    if local:
        return {**env, "LISTWATCH_STORAGE__KIND": "local", "LISTWATCH_STORAGE__PATH": str(data_dir / "store")}
    return {**env, **server.settings_env(bucket), "LISTWATCH_STORAGE__ENDPOINT_URL": proxy.endpoint}


def copy_state(first: Path, to: Path, server: S3Server, bucket: str, spool: bool) -> Path:
    """A fresh copy of the first crawl's data directory; with ``spool``, its WARCs back in the spool."""
    shutil.copytree(first, to)
    if spool:
        client, folder = server.client(), to / "spool" / SOURCE_ID
        folder.mkdir(parents=True, exist_ok=True)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".warc.gz") and Path(item["Key"]).name.startswith(SOURCE_ID):
                    client.download_file(bucket, item["Key"], str(folder / Path(item["Key"]).name))
    return to


def _median(rows: list[Measured], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in rows)


def _reads(rows: list[Measured]) -> float:
    return statistics.median(r.requests.get("GET range", 0) for r in rows)


@dataclass(frozen=True)
class Variant:
    name: str
    local: bool = False        # spool kept, local store: no network
    read_ahead: bool = True
    code: Path = ROOT          # the checkout whose listwatch runs the crawl (``--ab``)


def variants(ab: Path | None) -> list[Variant]:
    found = [Variant("remote"), Variant("remote, no read-ahead", read_ahead=False), Variant("local", local=True)]
    return found + ([Variant(f"remote, {ab}", code=ab)] if ab is not None else [])


def run(args: argparse.Namespace, server: S3Server, site: Site, work: Path) -> None:
    bucket = server.make_bucket()
    source = work / "bench-crawl.yaml"
    source.write_text(listing_source(SOURCE_ID, "bench crawl", f"{site.url}/list/index.html", pages=LISTING_PAGES + 1,
                                     dated=True, detail=DETAIL, concurrency=16, robots=True,
                                     limits={"max_pages": 100000}), encoding="utf-8")
    with StoreProxy(server.port, args.latency_ms / 1000) as proxy:
        first_dir = work / "first"
        first = crawl(source, environment(first_dir, server, bucket, proxy, False), "full", proxy)
        print(f"== Remote store: {args.store} behind {args.latency_ms} ms each way; site {args.kb} KB pages ==")
        print(first.line("first crawl (synced)"))
        recrawls: dict[str, list[Measured]] = {v.name: [] for v in variants(args.ab)}
        for r in range(args.rounds):
            order = variants(args.ab) if r % 2 == 0 else variants(args.ab)[::-1]
            for n, variant in enumerate(order):
                data = copy_state(first_dir, work / f"re-{r}-{n}", server, bucket, spool=variant.local)
                got = crawl(source, environment(data, server, bucket, proxy, variant.local), "full", proxy,
                            read_ahead=variant.read_ahead, code=variant.code)
                recrawls[variant.name].append(got)
                print(got.line(f"re-crawl {variant.name}") + f"  load {os.getloadavg()[0]:.1f}")
        quick = quick_checks(args, first_dir, work, source, server, bucket, proxy)
        summary(recrawls, quick)


def quick_checks(args: argparse.Namespace, first_dir: Path, work: Path, source: Path, server: S3Server, bucket: str,
                 proxy: StoreProxy) -> dict[str, list[Measured]]:
    """``--quick`` checks per variant, one host each, taking turns (a check of each variant, in rotating order):
    the machine's drift over the run touches every variant alike."""
    hosts: dict[str, Host] = {}
    try:
        for n, variant in enumerate(v for v in variants(args.ab) if v.read_ahead):
            data = copy_state(first_dir, work / f"quick-{n}", server, bucket, spool=variant.local)
            hosts[variant.name] = Host(environment(data, server, bucket, proxy, variant.local), data, variant.code)
            hosts[variant.name].check(source, proxy)  # warm-up: imports on first use, first connections
        quick: dict[str, list[Measured]] = {name: [] for name in hosts}
        for k in range(args.quick):
            names = list(hosts)
            for name in names[k % len(names):] + names[:k % len(names)]:
                quick[name].append(hosts[name].check(source, proxy))
    finally:
        for host in hosts.values():
            host.stop()
    for name, rows in quick.items():
        for k, got in enumerate(rows):
            print(got.line(f"quick check {k + 1} {name}"))
    return quick


def _requests(row: Measured) -> int:
    return sum(v for k, v in row.requests.items() if k != "connections")


def summary(recrawls: dict[str, list[Measured]], quick: dict[str, list[Measured]]) -> None:
    print(f"== Ratios to local (medians; load {os.getloadavg()[0]:.1f}) ==")
    local = recrawls.pop("local")
    for name, rows in recrawls.items() if local else ():
        print(f"  re-crawl {name:24s}: crawl time {_median(rows, 'crawl') / _median(local, 'crawl'):.2f}x"
              f"  wall {_median(rows, 'wall') / _median(local, 'wall'):.2f}x"
              f"  cpu {_median(rows, 'cpu') / _median(local, 'cpu'):.2f}x"
              f"  peak RSS {_median(rows, 'rss_mb') / _median(local, 'rss_mb'):.2f}x"
              f"  ranged GETs {_reads(rows):.0f} for {sum(rows[0].report.get('pages_ok', {}).values())} pages")
    local_q = quick.pop("local")
    for name, rows in quick.items():
        print(f"  quick check {name:21s}: wall {_median(rows, 'wall') / _median(local_q, 'wall'):.2f}x"
              f" ({_median(rows, 'wall') * 1000:.0f} ms, local {_median(local_q, 'wall') * 1000:.0f} ms)"
              f"  cpu {_median(rows, 'cpu') / _median(local_q, 'cpu'):.2f}x"
              f"  ranged GETs {_reads(rows):.0f}, all requests {statistics.median(map(_requests, rows)):.0f} per check")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_remote_store",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="delay each way per chunk (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="re-crawls of each variant (default 2)")
    parser.add_argument("--quick", type=int, default=5, help="quick checks in a row per variant (default 5)")
    parser.add_argument("--kb", type=int, default=6, help="page weight in KB (default 6)")
    parser.add_argument("--store", choices=("rclone", "moto"), default="rclone")
    parser.add_argument("--ab", type=Path, help="also run the remote variant with this checkout's code "
                        "(e.g. /work/main): a change measured in the same run")
    args = parser.parse_args(argv)
    serving = rclone_server() if args.store == "rclone" else moto_server()
    site = Site(args.kb)
    try:
        with serving as server, tempfile.TemporaryDirectory(prefix="listwatch-remote-") as tmp:
            run(args, server, site, Path(tmp))
    finally:
        site.stop()


if __name__ == "__main__":
    main()
