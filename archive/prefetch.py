"""Earlier extractions fetched from the store ahead of the crawl that reuses them.

An unchanged page (a 304, or the same bytes again) takes the extraction archived with its earlier capture: one
small metadata record, read back by byte range. While its WARC is still in the spool that is a local read; once
the WARC is uploaded (and the spool copy removed) it is one ranged GET to the store per page. Made on the
reactor thread, each GET stalls the whole crawl for a network round trip: 1,900 unchanged detail pages at 30 ms
each is a minute of nothing. So when a full crawl starts, the extractions it may need are fetched on a few threads,
in the order the view lists them, while the crawl requests its first pages; a page then finds its record
waiting, or waits only for its own read. Bounded in bytes (``PREFETCH_BYTES``): past that, pages read
synchronously as before. A quick check (a listing page or two) reads what it needs when it needs it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from archive.storage.base import Storage, StorageError

if TYPE_CHECKING:
    from archive.dedup import Earlier

logger = logging.getLogger(__name__)
PREFETCH_THREADS = 8
PREFETCH_BYTES = 64 << 20   # 64 MiB of records (a few KB each): tens of thousands of pages


class Prefetch:
    """Store reads started ahead, per (source, record id); each result is taken once."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[tuple[str, str], Future[bytes | None]] = {}

    def start(self, source_id: str, records: Iterable[Earlier], spool_dir: str | None) -> int:
        """Fetch the records whose WARC is no longer in the spool; returns how many were started."""
        budget, started, in_spool = PREFETCH_BYTES, 0, {}
        for earlier in records:
            if earlier.warc_name is None or not earlier.warc_key or earlier.length > budget:
                continue
            if spool_dir is not None:
                name = earlier.warc_name
                if name not in in_spool:
                    in_spool[name] = os.path.exists(os.path.join(spool_dir, source_id, name))
                if in_spool[name]:
                    continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="listwatch-prefetch")
            budget -= earlier.length
            self._pending[(source_id, earlier.record_id)] = self._pool.submit(self._read, earlier)
            started += 1
        return started

    def take(self, source_id: str, earlier: Earlier) -> tuple[bool, bytes | None]:
        """(True, bytes or None when the read failed) if a read of this record was started, else (False, None)."""
        future = self._pending.pop((source_id, earlier.record_id), None)
        if future is None:
            return False, None
        return True, future.result()

    def stop(self, source_id: str | None = None) -> None:
        """Drop one source's reads (or all); the threads end with the last source's."""
        for key in [k for k in self._pending if source_id is None or k[0] == source_id]:
            self._pending.pop(key).cancel()
        if not self._pending and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _read(self, earlier: Earlier) -> bytes | None:
        try:
            return self.storage.read_range(earlier.warc_key or "", earlier.offset, earlier.length)
        except StorageError as exc:
            logger.warning("earlier capture %s unavailable: %s", earlier.record_id, exc)
            return None
