"""Earlier records read back from the store: ahead of the crawl that reuses them, few GETs, none after an outage.

An unchanged page (a 304, or the same bytes again) takes the extraction archived with its earlier capture: one
small metadata record, read back by byte range. While its WARC is still in the spool that is a local read; once
the WARC is uploaded (and the spool copy removed) it comes from the store. Measured with
``tests/benchmarks/bench_remote_store.py`` (rclone behind 20 ms each way, 2,000 pages): one ranged GET per page,
even on 8 threads, made an unchanged full re-crawl 2.7x slower than with the spool, and a quick check paid two
round trips in a row on the reactor thread. So:

- **Read ahead.** A full crawl asks for every extraction of the source when it starts (``DedupIndex.read_ahead``);
  a quick check asks only for its start pages' extraction and payload. The reads run on threads while the crawl
  requests its first pages; a page then finds its record waiting, or waits only for its own read.
- **Few, larger GETs.** A crawl writes a page's records together, so the records a re-crawl needs sit close to
  each other in a few WARC objects. Records of one object less than ``SPAN_GAP`` apart are fetched with one
  ranged GET of up to ``SPAN_BYTES``; the records are cut out on the reading thread and the bytes between them
  dropped at once. 2,000 pages at 6 KB: 9 GETs instead of 2,001.
- **Bounded memory.** Records held for the crawl are bounded by ``PREFETCH_BYTES`` (past that, pages read when
  they need to, as before); a GET in flight holds at most ``SPAN_BYTES``.
- **An unavailable store is asked once.** A read the store refuses as unavailable (down, 5xx after boto3's
  retries) makes every later read of this index fail at once, without a request: each affected page is then an
  unreadable extraction, fetched and extracted again, instead of every page waiting through retries and
  back-off. Other errors (a missing object) fail only the records of that read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from archive.storage.base import Storage, StorageError, StorageUnavailable

if TYPE_CHECKING:
    from archive.dedup import Earlier

logger = logging.getLogger(__name__)
PREFETCH_THREADS = 8
PREFETCH_BYTES = 64 << 20   # 64 MiB of records (a few KB each): tens of thousands of pages
SPAN_GAP = 64 << 10         # records closer than this in one object share a GET (a 40 KB page's response is ~25 KB)
SPAN_BYTES = 1 << 20        # at most this per GET: 8 in flight hold 8 MiB, and a 2,000-page crawl still has 8+ GETs

Members = dict[str, bytes]  # record id -> its bytes, as read from one span


def spans(records: Iterable[Earlier]) -> Iterator[list[Earlier]]:
    """The records grouped into ranged reads: same object, in offset order, gaps < ``SPAN_GAP``, ≤ ``SPAN_BYTES``."""
    ordered = sorted(records, key=lambda e: (e.warc_key or "", e.offset))
    group: list[Earlier] = []
    for earlier in ordered:
        if group:
            first, last = group[0], group[-1]
            if (earlier.warc_key != first.warc_key or earlier.offset - (last.offset + last.length) > SPAN_GAP
                    or earlier.offset + earlier.length - first.offset > SPAN_BYTES):
                yield group
                group = []
        group.append(earlier)
    if group:
        yield group


class Prefetch:
    """Store reads of earlier records: started ahead per (source, record id), each result taken once."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[tuple[str, str], Future[Members]] = {}
        self._down: str | None = None   # why the store is unavailable, once a read found it so
        self.reads = 0                  # GETs made (tests and benchmarks)

    def start(self, source_id: str, records: Iterable[Earlier], spool_dir: str | None) -> int:
        """Fetch the records whose WARC is no longer in the spool; returns how many were started."""
        chosen = [e for e in self._uploaded(source_id, records, spool_dir) if (source_id, e.record_id)
                  not in self._pending]
        for group in spans(chosen):
            if self._pool is None:
                self._pool = ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="listwatch-prefetch")
            future = self._pool.submit(self._read_span, group)
            for earlier in group:
                self._pending[(source_id, earlier.record_id)] = future
        return len(chosen)

    def _uploaded(self, source_id: str, records: Iterable[Earlier], spool_dir: str | None) -> Iterator[Earlier]:
        """The records only in the store, within the byte budget."""
        budget, in_spool = PREFETCH_BYTES, {}
        for earlier in records:
            if earlier.warc_name is None or not earlier.warc_key or earlier.length > budget:
                continue
            if spool_dir is not None:
                name = earlier.warc_name
                if name not in in_spool:
                    in_spool[name] = os.path.exists(os.path.join(spool_dir, source_id, name))
                if in_spool[name]:
                    continue
            budget -= earlier.length
            yield earlier

    def take(self, source_id: str, earlier: Earlier) -> tuple[bool, bytes | None]:
        """(True, bytes or None when the read failed) if a read of this record was started, else (False, None)."""
        future = self._pending.pop((source_id, earlier.record_id), None)
        if future is None:
            return False, None
        return True, future.result().pop(earlier.record_id, None)   # popped: the bytes go with the page

    def forget(self, source_id: str, earlier: Earlier) -> None:
        """This record will not be asked for (its page reuses its extraction): free its bytes now."""
        future = self._pending.pop((source_id, earlier.record_id), None)
        if future is not None and future.done():
            future.result().pop(earlier.record_id, None)

    def read(self, earlier: Earlier) -> bytes | None:
        """One record now (not read ahead); None when it cannot be read."""
        return self._read_span([earlier]).get(earlier.record_id)

    def stop(self, source_id: str | None = None) -> None:
        """Drop one source's reads (or all); the threads end with the last source's."""
        for key in [k for k in self._pending if source_id is None or k[0] == source_id]:
            self._pending.pop(key).cancel()
        if not self._pending and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _read_span(self, group: list[Earlier]) -> Members:
        first, last = group[0], group[-1]
        if self._down is not None:
            return {}
        start, end = first.offset, max(e.offset + e.length for e in group)
        try:
            self.reads += 1
            data = self.storage.read_range(first.warc_key or "", start, end - start)
        except StorageUnavailable as exc:
            self._down = str(exc)
            logger.warning("the store is unavailable: pages whose earlier extraction is only there are fetched "
                           "and extracted again (%s)", exc)
            return {}
        except StorageError as exc:
            logger.warning("earlier captures %s … %s unavailable: %s", first.record_id, last.record_id, exc)
            return {}
        return {e.record_id: data[e.offset - start:e.offset - start + e.length] for e in group}
