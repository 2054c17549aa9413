"""Crawl speed: listwatch's static crawl phase against a bare Scrapy spider and ``wget --warc-file``.

Run from the repository root (one command; about 10 minutes on 2 cores)::

    .venv/bin/python -m tests.benchmarks.bench_crawl [--rounds 4] [--kb 6 40] [--profile PATH] [--ab CHECKOUT]
                                                     [--split [--swap 0.2]]

The site (``crawl_site``): 2,000 pages (100 listing pages x 19 items, 1,900 detail pages; ETag and
Last-Modified on every page, 304 to conditional GETs) at each page weight (default 6 KB and 40 KB), served from
memory by two identical server processes, one per side. The crawls (``crawl_workers``) run in their own
processes at concurrency 16 and measure themselves from their first request to ``spider_closed``.

**Method: the two crawls of a ratio run at the same time, pinned together to one core** (the other core each
round), their sites on the other core. On this machine (a 2-vCPU KVM guest without hardware performance
counters) the CPU time of the same work drifts by up to 1.7x between runs minutes apart: bare Scrapy alone gave
1.75-3.1 ms/page, and 2.16-3.61 ms/page in one run of 12 pairs. Measured causes: the CPU other processes take
(their preemptions refill our caches; CPU/page rises with their share, correlation 0.6 at 40 KB), and the host:
a vCPU can run 5-25 % slower than the other for seconds, with no steal time reported and nothing else of ours on
it (an unpreemptable SCHED_FIFO loop ran 57-61 ms, at times 100-110 ms; two identical crawls pinned to the two
cores under SCHED_FIFO differed by 24 %). Not the causes: steal (< 1 %), GC (steady: 0-3 % of listwatch's CPU,
13-17 % of the bare spider's), the site (old threaded server and new asyncio one alike), connections (16
keep-alive connections for 2,001 responses on both sides), disk (system time ~1 %).
Crawls sharing a core live through the same moments on the same vCPU with the same neighbours. Bare Scrapy
against itself, 4 rounds at load 5-6: CPU ratio 0.991-1.009 (listwatch against itself 0.988-1.002), while
runs minutes apart differ by 25 % or more. ``--split`` gives each crawl its own core instead, trading cores every
``--swap`` seconds (0.2): as steady for identical crawls (0.981-1.019), but on a busy machine the kernel's load
balancer sends other processes to the core of the crawl with fewer threads (listwatch has a WARC writer thread,
bare Scrapy none), so bare Scrapy waited 3-4x longer for a CPU, the crawls overlapped for 34-73 % of their time
and the 6 KB CPU ratio spread 0.98-1.40 over 4 rounds (shared core, same load: 1.237-1.282). Each crawl's extra
threads share its core in both layouts: a crawl alone on an idle machine could also use the second core, which
this benchmark does not measure. Each round:

1. listwatch first crawl (``ListingSpider``, WARC capture on, dedup against an empty catalog) and, at the same
   moment, the bare Scrapy spider (same pages, fields, concurrency, ``CONCURRENT_ITEMS`` and event loop: uvloop,
   or asyncio's own with ``--bare-asyncio``; robots.txt obeyed, items to a jsonl feed). Both start together:
   each builds its crawler, says ``READY`` and waits for the parent's go.
2. listwatch unchanged full re-crawl of step 1's data (its WARCs indexed into the catalog first, as the
   pipeline does), at the same moment as a second listwatch first crawl (fresh data). The re-crawl's CPU is
   compared with that simultaneous first crawl's.

The cores swap every round (run an even number of rounds). Each round prints its ratios, and the summary gives
their median, range and per-round values. For every phase the run prints the steal time (``/proc/stat``), the
CPU that processes other than the bench used meanwhile and the load average; each crawl prints the seconds it
waited for a CPU (sharing a core, each waits while the other runs: pages/s compares the two at half a core
each) and the share of its CPU spent in the cyclic garbage collector. Hardware instruction counts would be
steadier than CPU time, but this VM exposes no PMU (``perf stat -e instructions``: not supported), so only CPU
time is compared; the header line says which.

Figures also printed: peak RSS (VmHWM) ratio; WARC bytes of a listwatch first crawl vs ``wget --warc-file`` of
the same site (when wget exists, run alone at the end); unchanged re-crawl WARC bytes vs the floor of one
request + one revisit record per page. ``--profile PATH`` adds uncounted crawls under cProfile
(``PATH-KB-first.prof``, ``PATH-KB-recrawl.prof``, ``PATH-KB-bare.prof``).

``--ab CHECKOUT`` (e.g. ``/work/main``) measures a change instead: this checkout's listwatch against the other
checkout's (imported from there, same virtualenv), first crawls then unchanged re-crawls, same pinning; it
prints this / other ratios of CPU/page, WARC bytes and peak RSS. A change of a few per cent, lost in the noise
of a ratio to bare Scrapy, shows there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.crawl_report import crawl_line, overlap, phase_line, ratio_line
from tests.benchmarks.crawl_run import Crawl, pin, run_together
from tests.benchmarks.crawl_site import LISTING_PAGES, PAGES, PER_PAGE, Site
from tests.listing_sources import listing_source

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"pages/s": 0.9, "cpu/page": 1.3, "rss": 2.0, "wget bytes": 1.2, "floor": 1.1,
           "recrawl cpu": 0.5}

DETAIL = {"link": "url", "fields": {"heading": "h1::text", "organizer": "td.org::text",
                                   "deadline": {"css": "td.deadline::text", "type": "date"}}}


Result = dict[str, Any]


def _cores(r: int, shared: bool = False) -> tuple[int, int]:
    """The two crawls' cores in round ``r`` (side A's, side B's), swapped every round; with ``shared``, one core
    for both, the other one in turn. One core twice if we have only one."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return allowed[0], allowed[0]
    if shared:
        return allowed[r % 2], allowed[r % 2]
    return (allowed[0], allowed[1]) if r % 2 == 0 else (allowed[1], allowed[0])


def _site_cores(r: int, shared: bool) -> tuple[int, int]:
    """Each site sits with its crawl; with ``shared``, both on the core the crawls leave free."""
    if not shared:
        return _cores(r)
    return _cores(r + 1, shared=True)


class Weight:
    """One page weight: two identical sites (one per side), their source files, and what the rounds measured."""

    def __init__(self, kb: int, work: Path, swap: float, shared: bool = False, asyncio: bool = False) -> None:
        self.kb, self.work, self.swap, self.shared, self.asyncio = kb, work, swap, shared, asyncio
        self.sites = (Site(kb), Site(kb))
        self.site_pids = tuple(site.process.pid for site in self.sites)
        self.sources = []
        for n, site in enumerate(self.sites):
            path = work / f"source-{kb}-{n}.yaml"
            path.write_text(listing_source("bench-crawl", "bench crawl", f"{site.url}/list/index.html",
                                           pages=LISTING_PAGES, dated=True, detail=DETAIL, concurrency=16,
                                           robots=True, limits={"max_pages": 100000}), encoding="utf-8")
            self.sources.append(path)
        self.firsts: list[tuple[Result, Result]] = []    # side A, side B of the first phase
        self.seconds: list[tuple[Result, Result]] = []   # side A, side B of the second phase

    def dir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"lw-bench-{name}-", dir=self.work))

    def together(self, r: int, a: list[str], b: list[str], code_b: Path = ROOT) -> tuple[Result, Result]:
        """Crawl worker arguments ``a`` (on side A's core, against site 0) and ``b`` (side B's, site 1) at once."""
        core_a, core_b = _cores(r, self.shared)
        for pid, core in zip(self.site_pids, _site_cores(r, self.shared), strict=True):
            pin(pid, core)
        (x, y), use = run_together([Crawl(a, core_a), Crawl(b, core_b, code=code_b)], self.site_pids,
                                   (core_a, core_b), self.swap)
        self.last_phase = phase_line(use)
        return x, y

    def listwatch(self, side: int, data: Path) -> list[str]:
        return ["listwatch", str(self.sources[side]), "--data-dir", str(data)]

    def stop(self) -> None:
        for site in self.sites:
            site.stop()


def bare_round(weight: Weight, r: int) -> None:
    """listwatch first crawl || bare Scrapy; then its unchanged re-crawl || a fresh listwatch first crawl."""
    core_a, core_b = _cores(r, weight.shared)
    data, bare_dir = weight.dir("listwatch"), weight.dir("bare")
    print(f"  round {r + 1}: listwatch on core {core_a}, bare Scrapy on core {core_b}", flush=True)
    bare_args = ["bare", weight.sites[1].url, "--data-dir", str(bare_dir), *(["--asyncio-loop"] * weight.asyncio)]
    lw, bare = weight.together(r, weight.listwatch(0, data), bare_args)
    weight.firsts.append((lw, bare))
    print(crawl_line("listwatch first crawl", lw,
                     f"  WARC {lw['warc_bytes']:,} B  items.jsonl {lw['items_bytes']:,} B"))
    print(crawl_line("bare Scrapy", bare))
    print(f"    ratios: CPU/page {lw['cpu'] / bare['cpu']:.3f}, pages/s {bare['seconds'] / lw['seconds']:.3f}, "
          f"peak RSS {lw['rss_kb'] / bare['rss_kb']:.3f}; both crawling for {overlap(lw, bare):.0%} of the longer")
    print(weight.last_phase, flush=True)
    fresh = weight.dir("listwatch-2")
    again, first = weight.together(r, weight.listwatch(0, data), weight.listwatch(1, fresh))
    weight.seconds.append((again, first))
    for path in (data, bare_dir, fresh):
        shutil.rmtree(path, ignore_errors=True)
    print(crawl_line("unchanged re-crawl", again, f"  WARC {again['warc_bytes']:,} B, floor {again['floor']:,} B "
                                                  f"({again['warc_bytes'] / max(1, again['floor']):.3f})"))
    print(crawl_line("listwatch first crawl", first))
    print(f"    ratio: re-crawl CPU / first crawl CPU {again['cpu'] / first['cpu']:.3f}")
    print(weight.last_phase, flush=True)


def ab_round(weight: Weight, r: int, other: Path) -> None:
    """This checkout's listwatch || the other checkout's: first crawls, then their unchanged re-crawls."""
    core_a, core_b = _cores(r, weight.shared)
    mine, theirs = weight.dir("this"), weight.dir("other")
    print(f"  round {r + 1}: this checkout on core {core_a}, {other} on core {core_b}", flush=True)
    for phase, kept in (("first crawl", weight.firsts), ("unchanged re-crawl", weight.seconds)):
        x, y = weight.together(r, weight.listwatch(0, mine), weight.listwatch(1, theirs), code_b=other)
        kept.append((x, y))
        for label, res in ((f"{phase}, this", x), (f"{phase}, other", y)):
            print(crawl_line(label, res, f"  WARC {res['warc_bytes']:,} B"))
        print(f"    ratios this / other: CPU/page {x['cpu'] / y['cpu']:.3f}, WARC bytes "
              f"{x['warc_bytes'] / max(1, y['warc_bytes']):.3f}")
        print(weight.last_phase, flush=True)
    shutil.rmtree(mine, ignore_errors=True)
    shutil.rmtree(theirs, ignore_errors=True)


def ab_summary(weight: Weight) -> None:
    x, y = weight.firsts[0]
    print(f"  listwatch imported from: this {x['code']}, other {y['code']}")
    for phase, pairs in (("first crawl", weight.firsts), ("unchanged re-crawl", weight.seconds)):
        print(ratio_line(f"{phase}: this / other CPU per page", [x["cpu"] / y["cpu"] for x, y in pairs], None))
        print(ratio_line(f"{phase}: this / other WARC bytes",
                         [x["warc_bytes"] / max(1, y["warc_bytes"]) for x, y in pairs], None))
    print(ratio_line("first crawl: this / other peak RSS", [x["rss_kb"] / y["rss_kb"] for x, y in weight.firsts], None))


def profiles(weight: Weight, profile: Path) -> None:
    """Extra crawls under cProfile, alone and not counted in any figure."""
    data = weight.dir("profile")
    for name in ("first", "recrawl"):
        run_together([Crawl([*weight.listwatch(0, data), "--profile", f"{profile}-{name}.prof"], None)])
    run_together([Crawl(["bare", weight.sites[1].url, "--data-dir", str(weight.dir("profile-bare")),
                         "--profile", f"{profile}-bare.prof"], None)])


def wget_bytes(url: str, work: Path) -> tuple[int, float] | None:
    if shutil.which("wget") is None:
        return None
    target = work / "wget"
    target.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(["wget", "-q", "-r", "-l", "inf", "-e", "robots=on", "--delete-after",
                    "--warc-file", str(target / "site"), "-P", str(target / "files"), f"{url}/list/index.html"],
                   check=False, timeout=1800)
    seconds = time.perf_counter() - started
    return sum(p.stat().st_size for p in target.glob("site*.warc.gz")), seconds


def bare_summary(weight: Weight) -> None:
    lw, bare = [p[0] for p in weight.firsts], [p[1] for p in weight.firsts]
    print(f"  medians: listwatch {PAGES / statistics.median(r['seconds'] for r in lw):.1f} pages/s, "
          f"{1000 * statistics.median(r['cpu'] for r in lw) / PAGES:.2f} ms CPU/page; bare Scrapy "
          f"{PAGES / statistics.median(r['seconds'] for r in bare):.1f} pages/s, "
          f"{1000 * statistics.median(r['cpu'] for r in bare) / PAGES:.2f} ms CPU/page")
    print(ratio_line("listwatch / bare Scrapy pages/s", [b["seconds"] / a["seconds"] for a, b in weight.firsts],
                     TARGETS["pages/s"], False))
    # Time spent runnable while another process (or the crawl's own site) held the core is not the crawl's.
    print(ratio_line("(same, not counting time waiting for a CPU)",
                     [(b["seconds"] - b["cpu_wait"]) / (a["seconds"] - a["cpu_wait"]) for a, b in weight.firsts],
                     None))
    print(ratio_line("listwatch / bare Scrapy CPU per page", [a["cpu"] / b["cpu"] for a, b in weight.firsts],
                     TARGETS["cpu/page"]))
    print(ratio_line("listwatch / bare Scrapy peak RSS", [a["rss_kb"] / b["rss_kb"] for a, b in weight.firsts],
                     TARGETS["rss"]))
    first_bytes = statistics.median(r["warc_bytes"] for r in lw)
    wget = wget_bytes(weight.sites[0].url, weight.work / f"w{weight.kb}")
    if wget is not None:
        print(f"  wget --warc-file: {wget[0]:,} B in {wget[1]:.1f} s ({PAGES / wget[1]:.0f} pages/s); "
              f"listwatch first crawl {first_bytes:,.0f} B")
        print(ratio_line("listwatch / wget WARC bytes", [first_bytes / wget[0]], TARGETS["wget bytes"]))
    else:
        print("  wget not installed: WARC bytes vs wget not measured")
    again = [p[0] for p in weight.seconds]
    print(f"  unchanged re-crawl (medians): {statistics.median(r['warc_bytes'] for r in again):,.0f} B, floor "
          f"(request + revisit per page) {statistics.median(r['floor'] for r in again):,.0f} B; "
          f"{1000 * statistics.median(r['cpu'] for r in again) / PAGES:.2f} ms CPU/page")
    print(ratio_line("re-crawl WARC bytes / floor", [r["warc_bytes"] / max(1, r["floor"]) for r in again],
                     TARGETS["floor"]))
    print(ratio_line("re-crawl CPU / simultaneous first crawl CPU", [a["cpu"] / f["cpu"] for a, f in weight.seconds],
                     TARGETS["recrawl cpu"]))


def bench_weight(kb: int, args: argparse.Namespace, work: Path, profile: Path | None) -> None:
    print(f"\n== {PAGES} pages ({LISTING_PAGES} listing + {LISTING_PAGES * PER_PAGE} detail) at {kb} KB, "
          f"concurrency 16 ==", flush=True)
    other = args.ab.resolve() if args.ab else None
    weight = Weight(kb, work, args.swap, shared=not args.split, asyncio=args.bare_asyncio)
    try:
        for r in range(args.rounds):
            if other is None:
                bare_round(weight, r)
            else:
                ab_round(weight, r, other)
        if profile is not None:
            profiles(weight, profile)
        if other is None:
            bare_summary(weight)
        else:
            ab_summary(weight)
    finally:
        weight.stop()


def _pmu() -> str:
    """Whether this machine could count instructions (a ``cpu`` PMU), for the header line."""
    return "hardware counters available but not used" if Path("/sys/bus/event_source/devices/cpu").exists() \
        else "no hardware instruction counters (no PMU): CPU time only"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_crawl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4,
                        help="rounds per page weight; the cores swap every round, so an even number (default 4)")
    parser.add_argument("--kb", type=int, nargs="+", default=[6, 40], help="page weights in KB (default 6 40)")
    parser.add_argument("--profile", type=Path,
                        help="also profile a first crawl, a re-crawl and the bare spider's crawl (extra, uncounted): "
                             "PATH-KB-first.prof, PATH-KB-recrawl.prof, PATH-KB-bare.prof")
    parser.add_argument("--split", action="store_true",
                        help="give each crawl a core of its own (with its site) instead of one shared core; skewed on "
                             "a busy machine (see above)")
    parser.add_argument("--swap", type=float, default=0.2, metavar="SECONDS",
                        help="with --split: the crawls trade cores this often (default 0.2; 0: each keeps its core)")
    parser.add_argument("--bare-asyncio", action="store_true",
                        help="the bare spider on asyncio's own event loop instead of the one listwatch uses (uvloop)")
    parser.add_argument("--ab", type=Path, metavar="CHECKOUT",
                        help="instead of bare Scrapy, race this checkout's listwatch against another checkout's "
                             "(e.g. /work/main), first crawls and unchanged re-crawls, and print this / other ratios")
    args = parser.parse_args(argv)
    if args.ab is not None and not (args.ab / "crawlers" / "run.py").is_file():
        parser.error(f"--ab {args.ab}: not a listwatch checkout (no crawlers/run.py there)")
    layout = f"each on its own core, trading cores every {args.swap:g} s" if args.split and args.swap > 0 else \
        "each on its own core" if args.split else "sharing one core (the other one each round), sites on the other"
    versus = "bare Scrapy" if args.ab is None else f"listwatch at {args.ab.resolve()}"
    print(f"listwatch crawl benchmark against {versus}: {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; rounds {args.rounds}, two crawls at a time, each "
          f"pinned, {layout}; {_pmu()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="lw-bench-crawl-"))
    try:
        for kb in args.kb:
            prof = args.profile.with_name(f"{args.profile.name}-{kb}") if args.profile else None
            bench_weight(kb, args, work, prof)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
