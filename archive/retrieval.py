"""Retrieval for archivists: captures of a URL, Memento (RFC 7089), and records read back from the store.

Every record is read with **one** ranged read of its stored WARC (``Storage.read_range`` over the gzip
member the catalog points at), decompressed, and digest-checked before it is returned: the
``WARC-Block-Digest`` and, where the record carries its own payload, the ``WARC-Payload-Digest`` are
recomputed, and a mismatch raises :class:`RecordIntegrityError` naming the file and offset.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from sqlalchemy import select
from warcio.utils import Digester

from archive.catalog import Catalog
from archive.catalog.models import Capture, WarcFile
from archive.catalog.types import as_utc
from archive.cdx import CdxEntry, QueryError, check_url, pad_timestamp, query_captures, ts_datetime
from archive.indexer import cdx_timestamp
from archive.links import replay_link
from archive.storage.base import Storage, StorageError

__all__ = ["CdxEntry", "NotFound", "Payload", "QueryError", "RecordIntegrityError", "find_capture",
           "query_captures", "read_payload", "read_record", "screenshot",
           "screenshot_capture", "timegate", "timemap"]

MEMENTO_TYPES = ("response", "revisit", "resource")


class NotFound(LookupError):
    """Nothing archived matches (HTTP 404)."""


class RecordIntegrityError(StorageError):
    """A stored record does not match its digests or its catalog entry."""


@dataclass(frozen=True)
class Payload:
    """The HTTP payload of a capture (revisits resolved to the record holding the bytes)."""

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    record_id: str            # the record asked for
    source_record_id: str     # the record the bytes came from (differs for revisits)
    timestamp: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


# ------------------------------------------------------------------------------------------------ Memento


def rfc1123(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def mementos(catalog: Catalog, url: str) -> list[CdxEntry]:
    return query_captures(catalog, url, record_types=MEMENTO_TYPES)


def timemap(catalog: Catalog, url: str, *, api_base: str = "", replay_base: str = "") -> str:
    """RFC 7089 TimeMap in ``application/link-format``: original, self, timegate, then each memento."""
    url = check_url(url)
    found = mementos(catalog, url)
    if not found:
        raise NotFound(f"no captures of {url}")
    api, replay = api_base.rstrip("/"), replay_base.rstrip("/")
    first, last = found[0], found[-1]
    lines = [
        f'<{url}>; rel="original"',
        f'<{api}/timemap/link/{url}>; rel="self"; type="application/link-format"; '
        f'from="{rfc1123(first.moment)}"; until="{rfc1123(last.moment)}"',
        f'<{api}/timegate/{url}>; rel="timegate"',
    ]
    for i, entry in enumerate(found):
        rel = "memento"
        if i == 0:
            rel = "first memento"
        if i == len(found) - 1:
            rel = "last memento" if i else "first last memento"
        lines.append(f'<{replay_link(replay, entry.url, entry.timestamp)}>; rel="{rel}"; '
                     f'datetime="{rfc1123(entry.moment)}"')
    return ",\n".join(lines) + "\n"


def timegate(catalog: Catalog, url: str, accept_datetime: datetime | None = None) -> CdxEntry:
    """The memento nearest ``accept_datetime`` (the latest when None); ties go to the earlier one."""
    url = check_url(url)
    found = mementos(catalog, url)
    if not found:
        raise NotFound(f"no captures of {url}")
    if accept_datetime is None:
        return found[-1]
    when = as_utc(accept_datetime)
    return min(found, key=lambda e: (abs((e.moment - when).total_seconds()), e.moment))


# ------------------------------------------------------------------------------------------------ records


def find_capture(catalog: Catalog, record_id: str) -> tuple[Capture, WarcFile]:
    rid = record_id.strip()
    rid = rid if rid.startswith("<") else f"<{rid}>"
    with catalog.read_session() as session:
        row = session.execute(select(Capture, WarcFile).join(WarcFile, WarcFile.id == Capture.warc_file_id)
                              .where(Capture.record_id == rid)).first()
    if row is None:
        raise NotFound(f"no record {rid} in the catalog")
    return row[0], row[1]


def read_record(catalog: Catalog, storage: Storage, record_id: str) -> bytes:
    """The WARC record (uncompressed bytes, exactly as written) after checking its digests."""
    capture, warc = find_capture(catalog, record_id)
    return _read_checked(storage, capture, warc)


def _read_checked(storage: Storage, capture: Capture, warc: WarcFile) -> bytes:
    where = f"{warc.key} at offset {capture.offset}"
    member = storage.read_range(warc.key, capture.offset, capture.length)
    try:
        inflater = zlib.decompressobj(wbits=31)
        data = inflater.decompress(member) + inflater.flush()
    except zlib.error as exc:
        raise RecordIntegrityError(f"record {capture.record_id} in {where} is not a valid gzip member: {exc}") \
            from None
    if not inflater.eof:
        raise RecordIntegrityError(f"record {capture.record_id} in {where} is truncated")
    headers, block = _split_record(data, where)
    if headers.get("warc-record-id") != capture.record_id:
        raise RecordIntegrityError(f"{where} holds {headers.get('warc-record-id')}, not {capture.record_id}: "
                                   "catalog and file disagree")
    _check_digest(headers.get("warc-block-digest"), block, "block", capture.record_id, where)
    if capture.record_type == "response":
        _check_digest(headers.get("warc-payload-digest"), _http_split(block)[1], "payload", capture.record_id,
                      where)
    elif capture.record_type in ("resource", "metadata", "conversion"):
        _check_digest(headers.get("warc-payload-digest"), block, "payload", capture.record_id, where)
    return data


def _split_record(data: bytes, where: str) -> tuple[dict[str, str], bytes]:
    end = data.find(b"\r\n\r\n")
    if not data.startswith(b"WARC/") or end < 0:
        raise RecordIntegrityError(f"{where} does not start a WARC record")
    headers: dict[str, str] = {}
    for line in data[:end].decode("utf-8", "replace").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length", ""))
    except ValueError:
        raise RecordIntegrityError(f"record in {where} has no valid Content-Length") from None
    block = data[end + 4:end + 4 + length]
    if len(block) != length:
        raise RecordIntegrityError(f"record in {where} is shorter than its Content-Length ({len(block)} < {length})")
    return headers, block


def _check_digest(expected: str | None, data: bytes, what: str, record_id: str, where: str) -> None:
    if not expected:
        return
    algo = expected.split(":", 1)[0].lower()
    if algo not in ("sha1", "sha256", "sha512", "md5"):
        return  # not one we can recompute; the block digest still covers the record
    digester = Digester(algo)
    digester.update(data)
    if str(digester).lower() != expected.lower():
        raise RecordIntegrityError(f"{what} digest mismatch for {record_id} in {where}: "
                                   f"stored {expected}, recomputed {digester}")


def _http_split(block: bytes) -> tuple[bytes, bytes]:
    end = block.find(b"\r\n\r\n")
    return (block, b"") if end < 0 else (block[:end], block[end + 4:])


def _parse_http(head: bytes) -> tuple[int | None, list[tuple[str, str]]]:
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)]
    return status, headers


def read_payload(catalog: Catalog, storage: Storage, record_id: str) -> Payload:
    """The HTTP status, headers and payload of a capture; a revisit's bytes come from the record it refers to."""
    capture, warc = find_capture(catalog, record_id)
    data = _read_checked(storage, capture, warc)
    _, block = _split_record(data, warc.key)
    if capture.record_type in ("resource", "metadata", "conversion"):
        return Payload(None, [("Content-Type", capture.mime or "application/octet-stream")], block,
                       capture.record_id, capture.record_id, capture.timestamp)
    head, body = _http_split(block)
    status, headers = _parse_http(head)
    source = capture
    if capture.record_type == "revisit":
        original, original_warc = _revisit_original(catalog, capture)
        _, original_block = _split_record(_read_checked(storage, original, original_warc), original_warc.key)
        original_head, body = _http_split(original_block)
        if status == 304 or not headers:
            status, headers = _parse_http(original_head)
        source = original
    return Payload(status, headers, body, capture.record_id, source.record_id, capture.timestamp)


def _revisit_original(catalog: Catalog, revisit: Capture) -> tuple[Capture, WarcFile]:
    """By WARC-Refers-To-Target-URI + Date first, then by URL + payload digest, then by digest alone."""
    base = (select(Capture, WarcFile).join(WarcFile, WarcFile.id == Capture.warc_file_id)
            .where(Capture.record_type == "response"))
    attempts = []
    if revisit.refers_to_uri and revisit.refers_to_date:
        attempts.append(base.where(Capture.url == revisit.refers_to_uri,
                                   Capture.timestamp == cdx_timestamp(revisit.refers_to_date)))
    if revisit.payload_digest:
        attempts.append(base.where(Capture.url == (revisit.refers_to_uri or revisit.url),
                                   Capture.payload_digest == revisit.payload_digest))
        attempts.append(base.where(Capture.payload_digest == revisit.payload_digest))
    with catalog.read_session() as session:
        for stmt in attempts:
            row = session.execute(stmt.order_by(Capture.timestamp.desc()).limit(1)).first()
            if row is not None:
                return row[0], row[1]
    raise NotFound(f"revisit {revisit.record_id} refers to {revisit.refers_to_uri} at {revisit.refers_to_date}, "
                   "which is not in the catalog")


def screenshot(catalog: Catalog, storage: Storage, url: str, at: str | None = None) -> bytes:
    """The PNG bytes of ``urn:screenshot:<url>`` nearest ``at`` (1–14 digits; latest when None)."""
    return read_payload(catalog, storage, screenshot_capture(catalog, url, at).record_id).body


def screenshot_capture(catalog: Catalog, url: str, at: str | None = None) -> CdxEntry:
    url = check_url(url)
    urn = url if url.startswith("urn:screenshot:") else f"urn:screenshot:{url}"
    shots = query_captures(catalog, urn, record_types=("resource",))
    if not shots:
        raise NotFound(f"no screenshot of {url}")
    chosen = shots[-1]
    if at:
        when = ts_datetime(pad_timestamp(at, upper=False, name="at"))
        chosen = min(shots, key=lambda e: abs((e.moment - when).total_seconds()))
    return chosen
