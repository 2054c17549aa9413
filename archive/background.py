"""A WARC writer that compresses and writes record groups on a thread of its own.

A crawl's reactor thread is its bottleneck, and gzip is the largest single part of its per-page capture work
(about a seventh of it at 40 KB pages). libdeflate and file writes release the GIL, so a second thread can do
them on another core while the reactor parses the next page. Records are still serialised on the caller's
thread (pure Python, which would hold the GIL anyway); only compression and I/O move.

Groups are written in the order given, each as one write + flush as :class:`RollingWarcWriter` does. The
queue is bounded in groups and in bytes (large attachments), so a crawl that outruns the disk waits instead of
holding pages in memory. What a process killed -9 can lose: the groups still queued (at most ``QUEUE_GROUPS``,
well under a second of crawling), on top of what the synchronous writer loses (nothing already written).

An idle writer is woken once ``WAKE_GROUPS`` groups or ``WAKE_BYTES`` wait, and otherwise looks every
``WAKE_SECONDS`` by itself; a busy one drains the queue without being told. Waking it for every group (two small
records per unchanged page on a re-crawl) cost the reactor a futex call and the process a thread switch per page:
~2 % of a re-crawl's CPU on the reactor thread alone. Groups still leave in order, at most ``WAKE_SECONDS`` late.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any

from warcio.recordloader import ArcWarcRecord

from archive.writer import RollingWarcWriter

QUEUE_GROUPS = 64
QUEUE_BYTES = 16 << 20   # a group larger than this is still taken, alone
WAKE_GROUPS = 16
WAKE_BYTES = 256 << 10
WAKE_SECONDS = 0.1


class ThreadedWarcWriter(RollingWarcWriter):
    """:class:`RollingWarcWriter` whose :meth:`submit` returns at once; :meth:`close` waits for every group.

    A write that fails on the thread (disk full) stops the writing and is raised by every later :meth:`submit`
    (each page's capture then fails, as with the synchronous writer), and by :meth:`close` if no submit came.
    """

    def __init__(self, directory: Path, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self._room = threading.Condition()
        self._groups: deque[tuple[list[tuple[bytes, ArcWarcRecord]], int] | None] = deque()  # None: close
        self._queued_bytes = 0   # counts the group being written too: it is still held in memory
        self._error: BaseException | None = None
        self._reported = False
        self._thread: threading.Thread | None = None
        self._idle = False   # the thread waits for groups: wake it only when enough have come

    def submit(self, *records: ArcWarcRecord) -> None:
        """Queue records to be written as one group (a group never straddles two files)."""
        self._raise_pending()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"warc-writer {self.prefix}", daemon=True)
            self._thread.start()
        group = [(self.builder.to_bytes(r), r) for r in records]
        size = sum(len(data) for data, _ in group)
        with self._room:
            while self._groups and (len(self._groups) >= QUEUE_GROUPS or self._queued_bytes + size > QUEUE_BYTES):
                self._room.wait()
            self._groups.append((group, size))
            self._queued_bytes += size
            if self._idle and (len(self._groups) >= WAKE_GROUPS or self._queued_bytes >= WAKE_BYTES):
                self._room.notify_all()

    @property
    def queued(self) -> int:
        """Groups submitted and not yet written: what a kill -9 now would lose."""
        with self._room:
            return sum(1 for group in self._groups if group is not None)

    def close(self) -> list[Path]:
        thread, self._thread = self._thread, None
        if thread is not None:
            with self._room:
                self._groups.append(None)
                self._room.notify_all()
            thread.join()
        closed = super().close()
        if not self._reported:
            self._raise_pending()
        return closed

    def _run(self) -> None:
        while True:
            with self._room:
                while not self._groups:
                    self._idle = True
                    self._room.wait(WAKE_SECONDS)
                self._idle = False
                queued = self._groups[0]
                if queued is None:
                    self._groups.popleft()
                    return
            group, size = queued
            if self._error is None:   # after a failure, drain the queue so the caller never blocks on it
                try:
                    self._write_serialised(group)
                except BaseException as exc:  # handed to the caller's thread, raised there
                    self._error = exc
            with self._room:
                self._groups.popleft()
                self._queued_bytes -= size
                self._room.notify_all()

    def _raise_pending(self) -> None:
        if self._error is not None:
            self._reported = True
            raise OSError(f"writing WARC records failed: {self._error}") from self._error

