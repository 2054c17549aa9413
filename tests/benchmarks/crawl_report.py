"""How ``bench_crawl`` prints a crawl, a phase of crawls run together, and a ratio over rounds."""

from __future__ import annotations

import statistics
from typing import Any

from tests.benchmarks.crawl_run import MachineUse
from tests.benchmarks.crawl_site import PAGES


def crawl_line(label: str, res: dict[str, Any], extra: str = "") -> str:
    check = "" if res["responses"] >= PAGES else f"  INVALID: only {res['responses']} responses"
    if res.get("problems"):
        check += f"  problems: {res['problems']}"
    return (f"    {label:<22} {PAGES / res['seconds']:7.1f} pages/s  {1000 * res['cpu'] / PAGES:5.2f} ms CPU/page "
            f"(GC {100 * res['gc_cpu'] / max(res['cpu'], 1e-9):4.1f} %)  waited {res['cpu_wait']:5.1f} of "
            f"{res['seconds']:5.1f} s for a CPU  peak RSS {res['rss_kb'] / 1024:6.1f} MB{extra}{check}")


def phase_line(use: MachineUse) -> str:
    return (f"    machine: steal {100 * use.steal_share:.1f} %, other processes {max(0.0, use.busy - use.ours):.1f} "
            f"CPU-s in {use.seconds:.1f} s (the bench {use.ours:.1f}), load {use.load:.2f}")


def overlap(x: dict[str, Any], y: dict[str, Any]) -> float:
    """Share of the longer crawl during which both were crawling."""
    both = min(x["ended"], y["ended"]) - max(x["started"], y["started"])
    return max(0.0, both) / max(x["ended"] - x["started"], y["ended"] - y["started"])


def spread(values: list[float]) -> tuple[float, str]:
    """Median and "median of N, range min-max" of per-round ratios."""
    return statistics.median(values), f"median of {len(values)}, range {min(values):.3f}-{max(values):.3f}"


def ratio_line(name: str, values: list[float], target: float | None, lower_is_better: bool = True) -> str:
    """The median of per-round ratios against its target (None: no target), with their range and values."""
    value, described = spread(values)
    verdict = ""
    if target is not None:
        ok = value <= target if lower_is_better else value >= target
        verdict = f"  target {'<=' if lower_is_better else '>='} {target}: {'PASS' if ok else 'FAIL'}"
    rounds = " ".join(f"{v:.3f}" for v in values) if len(values) > 1 else ""
    return f"  RATIO {name:<44} = {value:6.3f}{verdict}  ({described}{'; rounds ' + rounds if rounds else ''})"
