"""Starting ``crawl_workers`` processes together and reading what the machine did meanwhile (``bench_crawl``)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.benchmarks.crawl_workers import RESULT_MARK

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().with_name("crawl_workers.py")


class Crawl:
    """A crawl worker started and waiting for its go (``READY`` printed), pinned to ``core`` unless None.

    The worker script is always this checkout's; ``code`` is the checkout whose listwatch it imports (first on
    ``PYTHONPATH``, ahead of the virtualenv's editable install), so that two versions can be compared at once.
    """

    def __init__(self, args: list[str], core: int | None, code: Path = ROOT, timeout: float = 1800) -> None:
        command = [sys.executable, str(WORKER), *args]
        if core is not None:
            command += ["--core", str(core)]
        self.timeout = timeout
        self.stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 - read in result(), closed there
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(code)}
        self.process = subprocess.Popen(command, cwd=code, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True, env=env)
        self.ready, self.start_cpu = False, 0.0

    def wait_ready(self) -> None:
        """Wait for the worker's ``READY`` (it has built its crawler) and note the CPU it used to get there."""
        assert self.process.stdout is not None
        self.ready = self.process.stdout.readline().strip() == "READY"
        if self.ready:
            self.start_cpu = process_cpu(self.process.pid)

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        try:
            out, _ = self.process.communicate(timeout=self.timeout)
        finally:
            self.stderr.seek(0)
            err = self.stderr.read()
            self.stderr.close()
        for line in out.splitlines():
            if line.startswith(RESULT_MARK):
                return json.loads(line.removeprefix(RESULT_MARK))  # type: ignore[no-any-return]
        raise RuntimeError(f"crawl worker printed no result (exit {self.process.returncode}):\n{out[-2000:]}\n"
                           f"{err[-4000:]}")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class MachineUse:
    """What the whole machine did between two readings of ``/proc/stat``."""

    seconds: float
    busy: float          # CPU-seconds spent by every process (ours included), all CPUs
    ours: float          # CPU-seconds of the crawl processes (after their READY) and of the sites
    steal_share: float   # share of the CPUs' time the hypervisor gave to other guests
    load: float          # one-minute load average at the end


def _cpu_ticks() -> list[int]:
    with open("/proc/stat") as fh:
        return [int(x) for x in fh.readline().split()[1:]]


class MachineClock:
    def __init__(self) -> None:
        self.wall, self.ticks = time.perf_counter(), _cpu_ticks()

    def since(self, ours: float) -> MachineUse:
        ticks = [b - a for a, b in zip(self.ticks, _cpu_ticks(), strict=False)]
        hz = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
        total = max(1, sum(ticks[:8]))
        return MachineUse(seconds=time.perf_counter() - self.wall,
                          busy=(user + nice + system + irq + softirq) / hz, ours=ours, steal_share=steal / total,
                          load=os.getloadavg()[0])


def pin(pid: int, core: int) -> None:
    """Move process ``pid`` (all its threads) to ``core``; a process that has exited is left alone."""
    try:
        tasks = [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return
    for task in tasks:
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            os.sched_setaffinity(task, {core})


class Rotation:
    """Two groups of processes (a crawl and its site each) trading cores every ``period`` seconds.

    Why: a vCPU of this VM can run 5-25 % slower than the other for seconds at a time, with no steal time
    reported and nothing else of ours on it (the host's load on its hyperthread sibling, presumably). Pinned for
    a whole crawl, that favours one side; trading cores every fraction of a second gives both crawls the same
    share of each core. A migration costs a cache refill (tens of µs), far below the period.
    """

    def __init__(self, groups: list[list[int]], cores: tuple[int, int], period: float) -> None:
        self.groups, self.cores, self.period, self.turns = groups, cores, period, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.period):
            self.turns += 1
            for n, group in enumerate(self.groups):
                for pid in group:
                    pin(pid, self.cores[(n + self.turns) % 2])

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


def run_together(crawls: list[Crawl], site_pids: tuple[int, ...] = (), cores: tuple[int, int] | None = None,
                 swap: float = 0) -> tuple[list[dict[str, Any]], MachineUse]:
    """Let the crawls go at the same moment once all are READY; their results and the machine's use meanwhile
    (from the go to the last worker's exit, so it includes their work after timing, e.g. indexing WARCs).

    With ``cores`` and ``swap`` > 0, crawl n and site n start on ``cores[n]`` and the two pairs trade cores
    every ``swap`` seconds."""
    for crawl in crawls:
        crawl.wait_ready()
    clock, children, sites = MachineClock(), _children_cpu(), sum(process_cpu(p) for p in site_pids)
    for crawl in crawls:
        if crawl.ready:
            crawl.go()
    rotation = None
    if cores is not None and swap > 0 and cores[0] != cores[1] and len(crawls) == 2:
        groups = [[crawl.process.pid, *site_pids[n:n + 1]] for n, crawl in enumerate(crawls)]
        rotation = Rotation(groups, cores, swap)
    try:
        results = [crawl.result() for crawl in crawls]
    finally:
        if rotation is not None:
            rotation.stop()
    ours = _children_cpu() - children - sum(c.start_cpu for c in crawls) \
        + sum(process_cpu(p) for p in site_pids) - sites
    return results, clock.since(ours)
