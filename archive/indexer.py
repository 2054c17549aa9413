"""Index closed WARC files: catalog rows for every capture, and a CDXJ file beside each WARC.

``register_warc`` is the step between a crawl and the store: it hashes a closed spool file, records
it (state ``spooled``) and its captures, and writes ``NAME.cdxj``. The same reader rebuilds the
catalog from stored WARCs alone (``listwatch archive reindex``).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import insert, select
from surt import surt
from warcio.archiveiterator import ArchiveIterator

from archive.catalog import Catalog
from archive.catalog.models import Capture, WarcFile
from archive.storage.base import CHUNK, storage_key

INDEXED_TYPES = {"response", "revisit", "resource", "metadata", "conversion"}
_RUN_IN_NAME = re.compile(r"-(\d{8}T\d{6}Z-[0-9a-f]+)-\d{5}\.warc\.gz$")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class HashingStream(io.RawIOBase):
    """A read-only stream over chunks that hashes and counts what passes through: index and hash in one read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            block = next(self._chunks, None)
            if block is None:
                return 0
            self._buffer = block
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        self.sha256.update(target[:count])
        self.size += count
        return count

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def run_id_of(name: str) -> str | None:
    """Run ids are embedded in WARC names: ``<source>-<run_id>-<serial>.warc.gz``."""
    match = _RUN_IN_NAME.search(name)
    return match.group(1) if match else None


def created_of(name: str) -> datetime:
    run_id = run_id_of(name)
    if run_id:
        return datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return datetime.now(UTC)


def cdx_timestamp(warc_date: str) -> str:
    """``2026-03-05T01:02:03.456789Z`` → ``20260305010203456789`` (14 digits + optional micros)."""
    return re.sub(r"\D", "", warc_date)


def safe_surt(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        return url  # urn:dom:…, urn:screenshot:…, urn:items:… keep their own form
    try:
        return str(surt(url))
    except Exception:  # surt rejects some malformed URLs; the URL itself still sorts usefully
        return url


def pywb_key(url: str, surt_key: str) -> str:
    """The key pywb looks a record up by (its ``canonicalize``, which cdxj-indexer writes): the SURT for http(s)
    URLs, and for ``urn:<kind>:<url>`` the same canonicalization of the whole URN (lower case, query sorted,
    fragment dropped). The catalog's ``surt`` column keeps URNs as written (its queries match on that); only the
    CDXJ files (beside each WARC, pywb's merged index, a WACZ's index) need pywb's key, or a binary search
    there misses an uppercase or query-string URL's screenshot and items."""
    if not url.startswith("urn:"):
        return surt_key
    try:
        return str(surt(url))
    except Exception:  # as safe_surt: a URN surt rejects still sorts usefully as written
        return url


def iter_captures(stream: BinaryIO) -> Iterator[dict[str, Any]]:
    """One dict per indexed record, with its offset and compressed length in the file."""
    records = ArchiveIterator(stream)
    for record in records:
        kind = record.rec_type
        if kind not in INDEXED_TYPES:
            continue
        headers = record.rec_headers
        http = record.http_headers
        url = str(headers.get_header("WARC-Target-URI") or "")
        mime = ""
        if http is not None and kind in ("response", "revisit"):
            mime = (http.get_header("Content-Type") or "").split(";")[0].strip()
        else:
            mime = (headers.get_header("Content-Type") or "").split(";")[0].strip()
        status = http.get_statuscode() if http is not None and kind in ("response", "revisit") else None
        row = {
            "record_id": str(headers.get_header("WARC-Record-ID")),
            "record_type": kind,
            "url": url,
            "surt": safe_surt(url),
            "timestamp": cdx_timestamp(str(headers.get_header("WARC-Date"))),
            "status": int(status) if status and status.isdigit() else None,
            "mime": mime[:200],
            "payload_digest": str(headers.get_header("WARC-Payload-Digest") or ""),
            "refers_to_uri": headers.get_header("WARC-Refers-To-Target-URI"),
            "refers_to_date": headers.get_header("WARC-Refers-To-Date"),
            "etag": http.get_header("ETag") if http is not None else None,
            "last_modified": http.get_header("Last-Modified") if http is not None else None,
        }
        records.read_to_end(record)  # raw bytes, never decoded: a gzip bomb payload is not inflated here
        row["offset"] = records.get_record_offset()
        row["length"] = records.get_record_length()
        yield row


def cdxj_lines(rows: Iterable[dict[str, Any]], filename: str) -> list[str]:
    """pywb-compatible CDXJ, SURT-sorted."""
    lines = []
    for row in rows:
        fields: dict[str, Any] = {"url": row["url"], "mime": row["mime"]}
        if row["status"] is not None:
            fields["status"] = str(row["status"])
        if row["payload_digest"]:
            fields["digest"] = row["payload_digest"]
        if row["record_type"] == "revisit":
            fields["mime"] = "warc/revisit"
        fields.update(length=str(row["length"]), offset=str(row["offset"]), filename=filename)
        key = pywb_key(row["url"], row["surt"])
        lines.append(f"{key} {row['timestamp'][:14]} {json.dumps(fields, ensure_ascii=False)}")
    return sorted(lines)


def write_cdxj(path: Path, rows: list[dict[str, Any]]) -> Path:
    target = path.with_name(path.name.removesuffix(".warc.gz") + ".cdxj")
    target.write_text("\n".join(cdxj_lines(rows, path.name)) + "\n", encoding="utf-8")
    return target


def register_warc(catalog: Catalog, path: Path, *, source_id: str, run_id: str | None = None,
                  prefix: str = "") -> WarcFile:
    """Hash, index and record a closed spool WARC (idempotent by file name); writes its ``.cdxj``."""
    with catalog.session() as session:
        existing = session.scalar(select(WarcFile).where(WarcFile.name == path.name))
        if existing is not None:
            return existing
    with path.open("rb") as fh:
        stream = HashingStream(iter(partial(fh.read, CHUNK), b""))
        rows = list(iter_captures(io.BufferedReader(stream, CHUNK)))
        stream.drain()
    write_cdxj(path, rows)
    created = created_of(path.name)
    warc = WarcFile(
        name=path.name, source_id=source_id, run_id=run_id or run_id_of(path.name),
        key=storage_key(prefix, source_id, created, path.name), size=stream.size,
        sha256=stream.sha256.hexdigest(), state="spooled", created_at=datetime.now(UTC),
    )
    with catalog.session() as session:
        session.add(warc)
        session.flush()
        add_captures(session, warc, rows)
    return warc


def add_captures(session: Any, warc: WarcFile, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(Capture), [
            {**row, "warc_file_id": warc.id, "source_id": warc.source_id, "run_id": warc.run_id} for row in rows])
