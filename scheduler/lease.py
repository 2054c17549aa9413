"""Who owns a crawl run: a lock file held by the crawling process for as long as it lives.

The process that writes a run's WARCs (``listwatch crawl`` by hand, or the subprocess the daemon starts) takes an
exclusive ``flock`` on ``DATA_DIR/runs/<source>/<run_id>/crawl.lease`` *before* the run row says ``running`` and
keeps it until the run is finished and ingested. The kernel drops the lock when the process ends, however it
ends (kill -9 included), and the descriptor is not inherited by the browsers a crawl starts. So "is this run
alive?" is answered by trying the lock, not by reading command lines: recovery (:mod:`scheduler.recovery`)
touches a run or its ``.open`` WARCs only when nobody holds its lease.

The file also records who took it (pid, process start time, host, command) for operators; the lock, not the
text, is the truth.

>>> with RunLease(lease_path(data_dir, "demo", run_id)):   # doctest: +SKIP
...     crawl()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from types import TracebackType

import psutil

from crawlers.report import run_dir

LEASE_NAME = "crawl.lease"


class LeaseHeld(RuntimeError):
    """Another live process holds this run's lease."""


def lease_path(data_dir: Path, source_id: str, run_id: str) -> Path:
    return run_dir(data_dir, source_id, run_id) / LEASE_NAME


class RunLease:
    """An exclusive, non-blocking ``flock`` on a run's lease file, held until :meth:`release` (or exit)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> RunLease:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LeaseHeld(f"run lease {self.path} is held by another process") from None
        me = psutil.Process()
        record = {"pid": me.pid, "started": me.create_time(), "host": socket.gethostname(),
                  "command": " ".join(sys.argv[:3])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode() + b"\n", 0)
        self._fd = fd
        return self

    def release(self) -> None:
        # The file stays: unlinking a lock file races with a process that has just opened it.
        if self._fd is not None:
            os.close(self._fd)   # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> RunLease:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def lease_held(path: Path) -> bool | None:
    """True while a live process holds the lease, False once it is free, None when there is no lease file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return False
