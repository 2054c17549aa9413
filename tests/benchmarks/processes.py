"""CPU time of a process tree, for the benchmarks that measure a daemon with its crawl processes or hosts."""

from __future__ import annotations

import psutil


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, its live descendants, and the children each of them has reaped
    (crawl processes and retired hosts that already ended). 0 if the process is gone."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total
