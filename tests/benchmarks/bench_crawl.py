"""Crawl speed: listwatch's static crawl phase against a bare Scrapy spider and ``wget --warc-file``.

Run from the repository root (one command; about 6 minutes on 2 quiet cores)::

    .venv/bin/python -m tests.benchmarks.bench_crawl [--rounds 4] [--kb 6 40] [--profile PATH]

The site (``crawl_site``): 2,000 pages (100 listing pages x 19 items, 1,900 detail pages; ETag and
Last-Modified on every page, 304 to conditional GETs) at each page weight (default 6 KB and 40 KB), served from
memory by two identical server processes, one per side. The crawls (``crawl_workers``) run in their own
processes at concurrency 16 and measure themselves from their first request to ``spider_closed``.

**Method: the two crawls of a ratio run at the same time, each pinned to its own core.** On this machine (a
2-vCPU VM with no hardware performance counters) the CPU time of the same work swings by up to 2x between runs
minutes apart: other processes' cache and TLB pollution, the host's load on the vCPUs' hyperthread siblings,
clock changes. Run one after the other, even a bare spider against itself differed by 1.75-3.1 ms/page.
Run together, both crawls live through the same moments, so what slows one slows the other, and their ratio is
steady. Each round:

1. listwatch first crawl (``ListingSpider``, WARC capture on, dedup against an empty catalog) on core A with its
   site on core A, and at the same moment the bare Scrapy spider (same pages, fields, concurrency and
   ``CONCURRENT_ITEMS``, robots.txt obeyed, items to a jsonl feed) on core B with its own site on core B.
   Both start together: each builds its crawler, says ``READY`` and waits for the parent's go.
2. listwatch unchanged full re-crawl of step 1's data (its WARCs indexed into the catalog first, as the
   pipeline does) on core A, at the same moment as a second listwatch first crawl (fresh data) on core B.
   The re-crawl's CPU is compared with that simultaneous first crawl's.

Cores A and B swap every round, so a core that is busier or slower (another process pinned there, a noisier
hyperthread sibling) favours each side in turn; run an even number of rounds. Each round prints its ratios, and
the summary gives their median and range (min-max). For every phase the run prints the machine's steal time
(``/proc/stat``), the CPU that processes other than the bench used meanwhile, and the load average; each crawl
prints the seconds it waited for a CPU and the share of its CPU spent in the cyclic garbage collector.
Hardware instruction counts (steadier than CPU time) are used where the VM exposes a PMU; this one does not
(``perf stat -e instructions``: "not supported"), so only CPU time is compared.

Figures also printed: peak RSS (VmHWM) ratio; WARC bytes of a listwatch first crawl vs ``wget --warc-file`` of
the same site (when wget exists, run alone at the end); unchanged re-crawl WARC bytes vs the floor of one
request + one revisit record per page. ``--profile PATH`` adds uncounted crawls under cProfile
(``PATH-KB-first.prof``, ``PATH-KB-recrawl.prof``, ``PATH-KB-bare.prof``).
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

from tests.benchmarks.crawl_run import Crawl, MachineUse, run_together
from tests.benchmarks.crawl_site import LISTING_PAGES, PAGES, PER_PAGE, Site

TARGETS = {"pages/s": 0.9, "cpu/page": 1.3, "rss": 2.0, "wget bytes": 1.2, "floor": 1.1,
           "recrawl cpu": 0.5}

SOURCE = """\
id: bench-crawl
name: bench crawl
start_urls: ["{url}/list/index.html"]
pagination:
  kind: template
  template: "index_{{n}}.html"
  total: {{css: ".pager", regex: "共\\\\s*(\\\\d+)\\\\s*页", type: int}}
  max_pages: {pages}
items:
  selector: "ul.list > li"
  key: url
  fields:
    title: "a::text"
    url: {{css: "a::attr(href)", type: url}}
    date: {{css: "span.date::text", type: date}}
detail:
  link: url
  fields:
    heading: "h1::text"
    organizer: "td.org::text"
    deadline: {{css: "td.deadline::text", type: date}}
politeness: {{delay: 0, concurrency: 16, obey_robots: true}}
limits: {{max_pages: 100000}}
"""


def _crawl_line(label: str, res: dict[str, Any], extra: str = "") -> str:
    check = "" if res["responses"] >= PAGES else f"  INVALID: only {res['responses']} responses"
    if res.get("problems"):
        check += f"  problems: {res['problems']}"
    return (f"    {label:<22} {PAGES / res['seconds']:7.1f} pages/s  {1000 * res['cpu'] / PAGES:5.2f} ms CPU/page "
            f"(GC {100 * res['gc_cpu'] / max(res['cpu'], 1e-9):4.1f} %)  waited {res['cpu_wait']:5.1f} of "
            f"{res['seconds']:5.1f} s for a CPU  peak RSS {res['rss_kb'] / 1024:6.1f} MB{extra}{check}")


def _phase_line(use: MachineUse) -> str:
    return (f"    machine: steal {100 * use.steal_share:.1f} %, other processes {max(0.0, use.busy - use.ours):.1f} "
            f"CPU-s in {use.seconds:.1f} s (the bench {use.ours:.1f}), load {use.load:.2f}")


class Weight:
    """One page weight: two sites, the rounds, and what they measured."""

    def __init__(self, kb: int, work: Path, profile: Path | None) -> None:
        self.kb, self.work, self.profile = kb, work, profile
        self.sites = (Site(kb), Site(kb))
        self.site_pids = tuple(site.process.pid for site in self.sites)
        self.sources = []
        for n, site in enumerate(self.sites):
            path = work / f"source-{kb}-{n}.yaml"
            path.write_text(SOURCE.format(url=site.url, pages=LISTING_PAGES), encoding="utf-8")
            self.sources.append(path)
        self.pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []     # (listwatch, bare)
        self.recrawls: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (re-crawl, simultaneous first)

    def _dir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"lw-bench-{name}-", dir=self.work))

    def _pin_sites(self, cores: tuple[int, int]) -> None:
        for site, core in zip(self.sites, cores, strict=True):
            site.pin(core)

    def round(self, r: int) -> None:
        a, b = (0, 1) if r % 2 == 0 else (1, 0)
        if len(os.sched_getaffinity(0)) < 2:
            a = b = next(iter(os.sched_getaffinity(0)))
        self._pin_sites((a, b))
        data, bare_dir = self._dir("listwatch"), self._dir("bare")
        print(f"  round {r + 1}: listwatch on core {a}, bare Scrapy on core {b}", flush=True)
        (lw, bare), use = run_together([Crawl(["listwatch", str(self.sources[0]), "--data-dir", str(data)], a),
                                        Crawl(["bare", self.sites[1].url, "--data-dir", str(bare_dir)], b)],
                                       self.site_pids)
        shutil.rmtree(bare_dir, ignore_errors=True)
        self.pairs.append((lw, bare))
        print(_crawl_line("listwatch first crawl", lw, f"  WARC {lw['warc_bytes']:,} B  items.jsonl "
                                                        f"{lw['items_bytes']:,} B"))
        print(_crawl_line("bare Scrapy", bare))
        print(f"    ratios: CPU/page {lw['cpu'] / bare['cpu']:.3f}, pages/s {bare['seconds'] / lw['seconds']:.3f}, "
              f"peak RSS {lw['rss_kb'] / bare['rss_kb']:.3f}; both running for {_overlap(lw, bare):.0%} of the longer")
        print(_phase_line(use), flush=True)
        self._recrawl(r, data, a, b)

    def _recrawl(self, r: int, data: Path, a: int, b: int) -> None:
        fresh = self._dir("listwatch-2")
        (again, first), use = run_together([
            Crawl(["listwatch", str(self.sources[0]), "--data-dir", str(data)], a),
            Crawl(["listwatch", str(self.sources[1]), "--data-dir", str(fresh)], b)], self.site_pids)
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
        self.recrawls.append((again, first))
        print(_crawl_line("unchanged re-crawl", again, f"  WARC {again['warc_bytes']:,} B, floor {again['floor']:,} B "
                                                      f"({again['warc_bytes'] / max(1, again['floor']):.3f})"))
        print(_crawl_line("listwatch first crawl", first))
        print(f"    ratio: re-crawl CPU / first crawl CPU {again['cpu'] / first['cpu']:.3f}")
        print(_phase_line(use), flush=True)

    def profiles(self) -> None:
        """Extra crawls under cProfile, alone and not counted in any figure."""
        assert self.profile is not None
        data = self._dir("profile")
        for name in ("first", "recrawl"):
            run_together([Crawl(["listwatch", str(self.sources[0]), "--data-dir", str(data),
                                 "--profile", f"{self.profile}-{name}.prof"], None)])
        run_together([Crawl(["bare", self.sites[1].url, "--data-dir", str(self._dir("profile-bare")),
                             "--profile", f"{self.profile}-bare.prof"], None)])

    def stop(self) -> None:
        for site in self.sites:
            site.stop()


def _overlap(x: dict[str, Any], y: dict[str, Any]) -> float:
    both = min(x["ended"], y["ended"]) - max(x["started"], y["started"])
    return max(0.0, both) / max(x["ended"] - x["started"], y["ended"] - y["started"])


def _spread(values: list[float]) -> tuple[float, str]:
    return statistics.median(values), f"median of {len(values)}, range {min(values):.3f}-{max(values):.3f}"


def _ratio_line(name: str, values: list[float], target: float, lower_is_better: bool) -> str:
    value, spread = _spread(values)
    ok = value <= target if lower_is_better else value >= target
    return (f"  RATIO {name:<44} = {value:6.3f}  target {'<=' if lower_is_better else '>='} {target}: "
            f"{'PASS' if ok else 'FAIL'}  ({spread})")


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


def summary(weight: Weight) -> None:
    lw = [p[0] for p in weight.pairs]
    bare = [p[1] for p in weight.pairs]
    print(f"  medians: listwatch {PAGES / statistics.median(r['seconds'] for r in lw):.1f} pages/s, "
          f"{1000 * statistics.median(r['cpu'] for r in lw) / PAGES:.2f} ms CPU/page; bare Scrapy "
          f"{PAGES / statistics.median(r['seconds'] for r in bare):.1f} pages/s, "
          f"{1000 * statistics.median(r['cpu'] for r in bare) / PAGES:.2f} ms CPU/page")
    print(_ratio_line("listwatch / bare Scrapy pages/s", [b["seconds"] / a["seconds"] for a, b in weight.pairs],
                      TARGETS["pages/s"], False))
    # Time spent runnable while another process (or the crawl's own site) held the core is not the crawl's.
    unloaded = [(b["seconds"] - b["cpu_wait"]) / (a["seconds"] - a["cpu_wait"]) for a, b in weight.pairs]
    print(f"  (same, not counting time spent waiting for a CPU: {_spread(unloaded)[0]:.3f}, {_spread(unloaded)[1]})")
    print(_ratio_line("listwatch / bare Scrapy CPU per page", [a["cpu"] / b["cpu"] for a, b in weight.pairs],
                      TARGETS["cpu/page"], True))
    print(_ratio_line("listwatch / bare Scrapy peak RSS", [a["rss_kb"] / b["rss_kb"] for a, b in weight.pairs],
                      TARGETS["rss"], True))
    first_bytes = statistics.median(r["warc_bytes"] for r in lw)
    wget = wget_bytes(weight.sites[0].url, weight.work / f"w{weight.kb}")
    if wget is not None:
        print(f"  wget --warc-file: {wget[0]:,} B in {wget[1]:.1f} s ({PAGES / wget[1]:.0f} pages/s); "
              f"listwatch first crawl {first_bytes:,.0f} B")
        print(_ratio_line("listwatch / wget WARC bytes", [first_bytes / wget[0]], TARGETS["wget bytes"], True))
    else:
        print("  wget not installed: WARC bytes vs wget not measured")
    again = [p[0] for p in weight.recrawls]
    print(f"  unchanged re-crawl (medians): {statistics.median(r['warc_bytes'] for r in again):,.0f} B, floor "
          f"(request + revisit per page) {statistics.median(r['floor'] for r in again):,.0f} B; "
          f"{1000 * statistics.median(r['cpu'] for r in again) / PAGES:.2f} ms CPU/page")
    print(_ratio_line("re-crawl WARC bytes / floor", [r["warc_bytes"] / max(1, r["floor"]) for r in again],
                      TARGETS["floor"], True))
    print(_ratio_line("re-crawl CPU / simultaneous first crawl CPU", [a["cpu"] / f["cpu"] for a, f in weight.recrawls],
                      TARGETS["recrawl cpu"], True))


def bench_weight(kb: int, rounds: int, work: Path, profile: Path | None) -> None:
    print(f"\n== {PAGES} pages ({LISTING_PAGES} listing + {LISTING_PAGES * PER_PAGE} detail) at {kb} KB, "
          f"concurrency 16 ==", flush=True)
    weight = Weight(kb, work, profile)
    try:
        for r in range(rounds):
            weight.round(r)
        if profile is not None:
            weight.profiles()
        summary(weight)
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
    args = parser.parse_args(argv)
    print(f"listwatch crawl benchmark: {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; rounds {args.rounds}, two crawls at a time, "
          f"each pinned to its own core, cores swapped every round; {_pmu()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="lw-bench-crawl-"))
    try:
        for kb in args.kb:
            prof = args.profile.with_name(f"{args.profile.name}-{kb}") if args.profile else None
            bench_weight(kb, args.rounds, work, prof)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
