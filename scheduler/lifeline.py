"""A crawl process of its own dies with the scheduler or worker that started it, Chromium included.

Such a crawl runs in a session of its own, so that its limits can stop its whole process group; the price is
that nothing stops it when its parent is SIGKILLed (the OOM killer, ``kill -9``, a container stop without a
grace). Left running, it would go on crawling a source whose run the scheduler closes as interrupted and
re-queues: two crawls of one source at once. So :class:`scheduler.runner.CrawlRunner` gives the child a pipe
as stdin and never writes to it; the kernel closes the write end when the parent dies however it dies, the
child reads end-of-file and kills, at once, its descendants (Chromium: Playwright starts the browser in a
process group of its own, so the child's group alone would miss it) and its own process group. Its run row stays
``running``: recovery closes it ``interrupted`` with a reason (the scheduler's start, or its lost-worker pass in
distributed mode) and salvages its ``.open`` WARC, as for a machine that died.

Not ``PR_SET_PDEATHSIG``: it fires when the *thread* that forked the child ends, not the process (crawls are
started from pool threads), and it signals the child alone, not the browser in its own group. The crawl hosts
(:mod:`scheduler.crawlhost`) watch their stdin the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import psutil

ENV = "LISTWATCH_LIFELINE"     # "stdin": the parent holds the write end of our stdin


def watch_parent() -> None:
    """In a crawl child: die with the parent if the parent asked for it (see the module docstring)."""
    if os.environ.pop(ENV, "") != "stdin":
        return
    spare = os.getpgid(os.getppid())     # the parent's group (its other crawls, the worker): never signalled
    threading.Thread(target=_wait_for_eof, args=(spare,), name="lifeline", daemon=True).start()


def _wait_for_eof(spare: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    _die(spare)


def _die(spare: int) -> None:
    """SIGKILL every descendant, every process group they are in, and our own group (which ends us)."""
    try:
        family = psutil.Process().children(recursive=True)
    except psutil.Error:
        family = []
    groups = {os.getpgrp()}
    for proc in family:
        with contextlib.suppress(psutil.Error, OSError):
            groups.add(os.getpgid(proc.pid))
            proc.kill()
    for group in groups - {spare, os.getpgrp(), 0, 1}:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    if os.getpgrp() != spare:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(137)
