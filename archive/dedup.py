"""What the archive already holds, for cheap re-crawls.

Three questions, answered from a per-crawl view of the catalog plus what this crawl has written so far:
- ``by_digest``: was this exact payload archived before for this source? Then write a ``revisit``
  record (identical-payload-digest) instead of storing the payload again. Deduplication is scoped
  to a source so that each source's WARCs stay self-contained evidence: a source's WACZ export or
  replay never depends on another source's files. The saving given up is small (sources rarely
  share payloads beyond a few scripts).
- ``validators``: what ``ETag``/``Last-Modified`` did the last full capture of this URL carry? Then
  send a conditional GET; a 304 becomes a ``server-not-modified`` revisit and ``load_payload`` hands
  the earlier payload back to extraction.
- ``same_metadata``: was byte-identical extraction metadata (``urn:items:<url>``) archived before? Then
  the new metadata record only points at it. The match is by digest against every full metadata
  record of that URL, never "the newest record": after one unchanged crawl the newest is itself a
  pointer, and comparing with it made unchanged crawls alternate full copy / pointer.
- ``extraction``: where is the page's newest full metadata record (pointers have their own media type)?
  An unchanged (304) detail page takes that extraction instead of reading back and parsing its payload.
- ``original_metadata``: the digest of the extraction archived with a capture, found by page and moment
  (a page's metadata record carries its capture's WARC-Date). An unchanged page whose extraction equals
  the one archived with the capture its revisit refers to writes no metadata record at all: readers
  follow the revisit's WARC-Refers-To to the original capture and take that capture's extraction.

Each source's view (:class:`SourceView`) is loaded with a few set-based queries the first time the
source is asked about (``prepare`` does it before the crawl starts), so the per-request path never
touches the catalog. A source the catalog has never captured costs one existence check and no load.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

from archive.catalog import Catalog
from archive.catalog.models import Capture, WarcFile
from archive.indexer import cdx_timestamp
from archive.prefetch import Prefetch
from archive.records import ITEMS_URN
from archive.storage.base import Storage

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


@dataclass
class SourceView:
    """What the catalog knew about one source when the crawl started."""

    digests: dict[str, Earlier] = field(default_factory=dict)            # payload digest -> a full capture
    validators: dict[str, Earlier] = field(default_factory=dict)         # URL -> newest 200 response, if validated
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)    # urn -> {payload digest: record id}
    extractions: dict[str, Earlier] = field(default_factory=dict)        # urn -> newest full metadata record
    moments: dict[tuple[str, str], str] = field(default_factory=dict)    # (urn, timestamp) -> full metadata digest


def load_view(session: Session, source_id: str) -> SourceView:
    """A source's view in five queries (none past the first when the source has no captures)."""
    if session.execute(select(Capture.id).where(Capture.source_id == source_id).limit(1)).first() is None:
        return SourceView()
    metadata, moments = _metadata(session, source_id)
    return SourceView(_digests(session, source_id), _validators(session, source_id),
                      metadata, _extractions(session, source_id), moments)


def _digests(session: Session, source_id: str) -> dict[str, Earlier]:
    full = (Capture.source_id == source_id, Capture.record_type.in_(("response", "resource")),
            Capture.payload_digest != "")
    first = select(func.min(Capture.id)).where(*full).group_by(Capture.payload_digest)
    rows = session.execute(select(Capture.url, Capture.timestamp, Capture.record_id, Capture.payload_digest)
                           .where(Capture.id.in_(first)))
    return {r.payload_digest: Earlier(r.url, warc_date_of(r.timestamp), r.record_id, r.payload_digest)
            for r in rows}


def _newest_per_url(session: Session, *where: ColumnElement[bool]) -> Iterable[tuple[Capture, str, str]]:
    """Each URL's newest capture among those matching ``where``, with its WARC file's name and key."""
    newest = (select(Capture.url, func.max(Capture.timestamp).label("ts")).where(*where)
              .group_by(Capture.url).subquery())
    return session.execute(
        select(Capture, WarcFile.name, WarcFile.key)
        .join(WarcFile, Capture.warc_file_id == WarcFile.id)
        .join(newest, and_(Capture.url == newest.c.url, Capture.timestamp == newest.c.ts))
        .where(*where)
    )


def _validators(session: Session, source_id: str) -> dict[str, Earlier]:
    rows = _newest_per_url(session, Capture.source_id == source_id, Capture.record_type == "response",
                           Capture.status == 200)
    found: dict[str, Earlier] = {}
    for capture, name, key in rows:
        if capture.etag or capture.last_modified:  # the newest full capture carries no validators: ask in full
            found[capture.url] = Earlier(capture.url, warc_date_of(capture.timestamp), capture.record_id,
                                         capture.payload_digest, capture.etag, capture.last_modified, name, key,
                                         capture.offset, capture.length)
    return found


def _metadata(session: Session, source_id: str) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], str]]:
    """Per page, each distinct metadata payload once (pointers to one record share one digest), and each full
    record's digest by (page, moment). Unchanged crawls add no rows, so this grows with changes only."""
    rows = session.execute(
        select(Capture.url, Capture.payload_digest, Capture.record_id, Capture.timestamp, Capture.mime)
        .where(Capture.source_id == source_id, Capture.record_type == "metadata",
               Capture.url.startswith(ITEMS_URN, autoescape=True))
    )
    found: dict[str, dict[str, str]] = {}
    moments: dict[tuple[str, str], str] = {}
    for url, digest, record, timestamp, mime in rows:
        known = found.setdefault(url, {})
        if record < known.get(digest, "\uffff"):
            known[digest] = record
        if mime == "application/json":
            moments[(url, timestamp)] = digest
    return found, moments


def _extractions(session: Session, source_id: str) -> dict[str, Earlier]:
    """Per page, where its newest full metadata record (what the extractor produced) is."""
    rows = _newest_per_url(session, Capture.source_id == source_id, Capture.record_type == "metadata",
                           Capture.mime == "application/json", Capture.url.startswith(ITEMS_URN, autoescape=True))
    return {c.url: Earlier(c.url, warc_date_of(c.timestamp), c.record_id, c.payload_digest, warc_name=name,
                           warc_key=key, offset=c.offset, length=c.length) for c, name, key in rows}


class DedupIndex:
    """Digest, validator and metadata look-ups for the crawls of one process, from per-source views."""

    def __init__(self, catalog: Catalog | None, *, spool_dir: Path | None = None,
                 storage: Storage | None = None) -> None:
        self.catalog = catalog
        self.spool_dir = spool_dir
        self.storage = storage
        self._views: dict[str, SourceView] = {}
        self._this_crawl: dict[tuple[str, str], Earlier] = {}
        # Spool WARCs read back (earlier extractions of unchanged pages), kept open for the crawl: opening the
        # file again for every page was ~1.5 % of an unchanged re-crawl's CPU. Closed WARCs never change.
        self._open: dict[str, BinaryIO] = {}
        self._prefetch = Prefetch(storage) if storage is not None else None

    def prepare(self, source_id: str) -> SourceView:
        """Load the source's view now (once): before the crawl, not on its first request."""
        view = self._views.get(source_id)
        if view is None:
            if self.catalog is None:
                view = SourceView()
            else:
                with self.catalog.read_session() as session:
                    view = load_view(session, source_id)
            self._views[source_id] = view
        return view

    def read_ahead(self, source_id: str, pages: Iterable[str] | None = None) -> int:
        """Start reading earlier records that are only in the store, on threads (``archive.prefetch``): every
        extraction of the source (a full crawl, which revisits every page, asks at its start), or only the
        extraction and payload of ``pages`` (a quick check's start pages: what it reads first)."""
        if self._prefetch is None:
            return 0
        view = self.prepare(source_id)
        # Extractions first (the byte budget goes to them first), then payloads: a page whose extraction cannot
        # be reused (it had problems, or there is none: attachments) is parsed again from its payload. Both
        # sit in the same stretches of the same WARCs, so the payloads cost few or no GETs more.
        records: Iterable[Earlier] = [*view.extractions.values(), *view.validators.values()]
        if pages is not None:
            wanted = [(view.extractions.get(ITEMS_URN + url), view.validators.get(url)) for url in pages]
            records = [e for pair in wanted for e in pair if e is not None]
        spool = str(self.spool_dir) if self.spool_dir is not None else None
        return self._prefetch.start(source_id, records, spool)

    def by_digest(self, digest: str, source_id: str) -> Earlier | None:
        found = self._this_crawl.get((source_id, digest))
        return found if found is not None else self.prepare(source_id).digests.get(digest)

    def remember(self, digest: str, source_id: str, earlier: Earlier) -> None:
        self._this_crawl.setdefault((source_id, digest), earlier)

    def same_metadata(self, urn: str, digest: str, source_id: str) -> str | None:
        """The id of an archived metadata record at ``urn`` with exactly this payload, if any."""
        return self.prepare(source_id).metadata.get(urn, {}).get(digest)

    def original_metadata(self, original: Earlier, source_id: str) -> str | None:
        """The payload digest of the full extraction archived with capture ``original``, if there is one."""
        return self.prepare(source_id).moments.get((ITEMS_URN + original.url, cdx_timestamp(original.warc_date)))

    def validators(self, url: str, source_id: str) -> Earlier | None:
        """The newest full (``response``) capture of ``url``, when it carried an ETag or Last-Modified."""
        return self.prepare(source_id).validators.get(url)

    def extraction(self, url: str, source_id: str) -> Earlier | None:
        """Where the newest full extraction metadata of page ``url`` is archived."""
        return self.prepare(source_id).extractions.get(ITEMS_URN + url)

    def load_extraction(self, earlier: Earlier, source_id: str) -> dict[str, Any] | None:
        """What the extractor produced for an earlier capture of a page (its metadata record's JSON)."""
        member = self._read_member(earlier, source_id)
        if member is None:
            return None
        try:  # one small gzip member of our own making: WARC headers, a blank line, the JSON block
            _, _, block = zlib.decompress(member, 31).partition(b"\r\n\r\n")  # gzip.decompress: 2.5x the CPU
            data = json.loads(block)
        except (zlib.error, ValueError) as exc:
            logger.warning("cannot read the earlier extraction %s: %s", earlier.record_id, exc)
            return None
        if not isinstance(data, dict) or "same_as" in data:
            return None
        page = self.prepare(source_id).validators.get(earlier.url.removeprefix(ITEMS_URN))
        if page is not None and self._prefetch is not None and data.get("role") == "detail" \
                and not data.get("problems"):  # reused, most likely (a listing page may be read for its paging)
            self._prefetch.forget(source_id, page)   # so its payload read ahead is not needed: free it
        return data

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

    def close_files(self, source_id: str | None = None) -> None:
        """Close the spool WARCs kept open for reading and drop the source's store reads not taken (at the end of
        each crawl using this index)."""
        files, self._open = self._open, {}
        for fh in files.values():
            fh.close()
        if self._prefetch is not None:
            self._prefetch.stop(source_id)

    def _read_member(self, earlier: Earlier, source_id: str) -> bytes | None:
        if earlier.warc_name is None:
            return None
        if self.spool_dir is not None:
            path = os.path.join(self.spool_dir, source_id, earlier.warc_name)   # plain os.path: no pathlib, no stat
            try:
                fh = self._open.get(path)
                if fh is None:
                    fh = self._open[path] = open(path, "rb")  # noqa: SIM115 - kept open, closed by close_files
                fh.seek(earlier.offset)
                return fh.read(earlier.length)
            except FileNotFoundError:
                pass  # uploaded and removed from the spool: read it from the store
        if self._prefetch is None or not earlier.warc_key:
            return None
        started, member = self._prefetch.take(source_id, earlier)
        return member if started else self._prefetch.read(earlier)
