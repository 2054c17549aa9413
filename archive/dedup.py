"""What the archive already holds, for cheap re-crawls.

Two questions, answered from the catalog plus what this crawl has written so far:
- ``by_digest``: was this exact payload archived before for this source? Then write a ``revisit``
  record (identical-payload-digest) instead of storing the payload again. Deduplication is scoped
  to a source so that each source's WARCs stay self-contained evidence: a source's WACZ export or
  replay never depends on another source's files. The saving given up is small (sources rarely
  share payloads beyond a few scripts).
- ``validators``: what ``ETag``/``Last-Modified`` did the last full capture of this URL carry? Then
  send a conditional GET; a 304 becomes a ``server-not-modified`` revisit and ``load_payload`` hands
  the earlier payload back to extraction.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from sqlalchemy import select
from warcio.archiveiterator import ArchiveIterator

from archive.catalog import Catalog
from archive.catalog.models import Capture, WarcFile
from archive.storage.base import Storage, StorageError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Earlier:
    """An archived capture a new record can refer to."""

    url: str
    warc_date: str                # WARC-Date form, for WARC-Refers-To-Date
    record_id: str
    payload_digest: str
    etag: str | None = None
    last_modified: str | None = None
    warc_name: str | None = None  # where to read the payload back from: the spool file, else the stored key
    warc_key: str | None = None
    offset: int = 0
    length: int = 0


def warc_date_of(timestamp: str) -> str:
    """Catalog timestamps (digits) back to WARC-Date form."""
    t = timestamp
    base = f"{t[0:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}"
    return f"{base}.{timestamp[14:]}Z" if len(timestamp) > 14 else f"{base}Z"


class DedupIndex:
    """Digest and validator look-ups for one crawl of one source."""

    def __init__(self, catalog: Catalog | None, *, spool_dir: Path | None = None,
                 storage: Storage | None = None) -> None:
        self.catalog = catalog
        self.spool_dir = spool_dir
        self.storage = storage
        self._this_crawl: dict[tuple[str, str], Earlier] = {}

    def by_digest(self, digest: str, source_id: str) -> Earlier | None:
        if (source_id, digest) in self._this_crawl:
            return self._this_crawl[source_id, digest]
        if self.catalog is None:
            return None
        with self.catalog.read_session() as session:
            row = session.execute(
                select(Capture.url, Capture.timestamp, Capture.record_id)
                .where(Capture.payload_digest == digest, Capture.source_id == source_id,
                       Capture.record_type.in_(("response", "resource")))
                .limit(1)
            ).first()
        if row is None:
            return None
        return Earlier(row.url, warc_date_of(row.timestamp), row.record_id, digest)

    def remember(self, digest: str, source_id: str, earlier: Earlier) -> None:
        self._this_crawl.setdefault((source_id, digest), earlier)

    def latest_metadata(self, urn: str, source_id: str) -> Earlier | None:
        """The newest metadata record about a page (``urn:items:<url>``), to skip rewriting identical items."""
        if self.catalog is None:
            return None
        with self.catalog.read_session() as session:
            row = session.execute(
                select(Capture.url, Capture.timestamp, Capture.record_id, Capture.payload_digest)
                .where(Capture.url == urn, Capture.source_id == source_id, Capture.record_type == "metadata")
                .order_by(Capture.timestamp.desc())
                .limit(1)
            ).first()
        return Earlier(row.url, warc_date_of(row.timestamp), row.record_id, row.payload_digest) if row else None

    def validators(self, url: str, source_id: str) -> Earlier | None:
        """The newest full (``response``) capture of ``url`` with an ETag or Last-Modified."""
        if self.catalog is None:
            return None
        with self.catalog.read_session() as session:
            row = session.execute(
                select(Capture, WarcFile.name, WarcFile.key)
                .join(WarcFile, Capture.warc_file_id == WarcFile.id)
                .where(Capture.url == url, Capture.source_id == source_id, Capture.record_type == "response",
                       Capture.status == 200)
                .order_by(Capture.timestamp.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        capture, name, key = row
        if not (capture.etag or capture.last_modified):
            return None
        return Earlier(capture.url, warc_date_of(capture.timestamp), capture.record_id, capture.payload_digest,
                       capture.etag, capture.last_modified, name, key, capture.offset, capture.length)

    def load_payload(self, earlier: Earlier, source_id: str) -> tuple[list[tuple[str, str]], bytes] | None:
        """The earlier response's HTTP headers and payload: from the spool if still there, else the store."""
        member = self._read_member(earlier, source_id)
        if member is None:
            return None
        try:
            record = next(iter(ArchiveIterator(BytesIO(member))))
            headers = list(record.http_headers.headers) if record.http_headers else []
            return headers, record.raw_stream.read()  # as on the wire: Content-Encoding still applies
        except (StopIteration, OSError, gzip.BadGzipFile) as exc:
            logger.warning("cannot read the earlier capture %s: %s", earlier.record_id, exc)
            return None

    def _read_member(self, earlier: Earlier, source_id: str) -> bytes | None:
        if earlier.warc_name is None:
            return None
        if self.spool_dir is not None:
            path = self.spool_dir / source_id / earlier.warc_name
            if path.exists():
                with path.open("rb") as fh:
                    fh.seek(earlier.offset)
                    return fh.read(earlier.length)
        if self.storage is not None and earlier.warc_key:
            try:
                return self.storage.read_range(earlier.warc_key, earlier.offset, earlier.length)
            except StorageError as exc:
                logger.warning("earlier capture %s unavailable: %s", earlier.record_id, exc)
        return None
