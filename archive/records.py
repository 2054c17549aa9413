"""Build WARC 1.1 records: SHA-256 digests, injectable clock and record ids.

Building a record is separate from writing it (as in warcio): this module returns warcio
``ArcWarcRecord`` objects and serialises one record to uncompressed bytes; ``archive.writer``
compresses and stores them. The three records every page gets (response, request, metadata) are built
with their final headers in warcio's order and serialised straight from them: warcio's generic path
scans the header list a dozen times a record (a third of the capture's CPU). Its bytes are the same,
which a test checks against warcio's own writer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

Headers = list[tuple[str, str]]

# The metadata record listing what was extracted from a page lives at ``urn:items:<page url>``.
ITEMS_URN = "urn:items:"
# A metadata record that only says "same as record X" (an unchanged page's unchanged extraction) has its own
# media type, so the catalog tells it from the full records it points at.
POINTER_TYPE = "application/vnd.listwatch.same-as+json"

# Headers describing a transfer that no longer applies to the bytes we store.
HOP_BY_HOP = {"transfer-encoding", "connection", "keep-alive"}
DECODED_BODY_DROP = HOP_BY_HOP | {"content-encoding", "content-length"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)   # 10 bits → two base32 characters


def b32_sha256(digest: bytes) -> str:
    """``base64.b32encode`` of a 32-byte SHA-256 digest, as text. Python 3.11's encoder is pure Python
    (~7 µs a call) and a captured page needs seven digests: this one is a few table look-ups."""
    if len(digest) != 32:
        return base64.b32encode(digest).decode("ascii")
    bits = int.from_bytes(digest, "big") << 4   # 256 bits padded with zeros to 260 = 52 characters
    return "".join([_B32_PAIRS[(bits >> shift) & 1023] for shift in range(250, -10, -10)]) + "===="


class Sha256Digester(Digester):
    """warcio's ``Digester`` for SHA-256 with the fast base32 above (same text: ``sha256:BASE32``)."""

    def __init__(self) -> None:
        self.type_ = "sha256"
        self.digester = hashlib.sha256()

    def __str__(self) -> str:
        return "sha256:" + b32_sha256(self.digester.digest())


def sha256_digest(data: bytes, *more: bytes) -> str:
    """The digest string used in WARC headers and the dedup index (``sha256:BASE32``) of ``data`` followed by
    ``more`` (hashed in turn rather than joined: a page body is not copied to be hashed)."""
    hashed = hashlib.sha256(data)
    for part in more:
        hashed.update(part)
    return "sha256:" + b32_sha256(hashed.digest())


_EMPTY_DIGEST = sha256_digest(b"")


class _Sha256Writer(WARCWriter):
    """warcio's writer with SHA-256 digests and an injectable clock and id source."""

    def __init__(self, clock: Callable[[], datetime], make_id: Callable[[], str]) -> None:
        super().__init__(BytesIO(), gzip=False, warc_version="1.1")
        self._clock = clock
        self._make_id = make_id
        self.known_payload_digest = ""   # set by the builder for the next record it creates

    @staticmethod
    def _create_digester() -> Digester:
        return Sha256Digester()

    def ensure_digest(self, record: ArcWarcRecord, block: bool = True, payload: bool = True) -> None:
        """warcio's, without hashing what is already known: the payload digest the capture computed for
        dedup, and the block digest of a record without HTTP headers (metadata, resource), whose block is
        its payload. Headers come out in the same order as warcio's own."""
        headers = record.rec_headers
        known, self.known_payload_digest = self.known_payload_digest, ""
        hashed = record.rec_type not in self.NO_PAYLOAD_DIGEST_TYPES
        if payload and known and hashed and not headers.get_header("WARC-Payload-Digest"):
            headers.add_header("WARC-Payload-Digest", known)
        payload_digest = headers.get_header("WARC-Payload-Digest")
        if (block and hashed and record.http_headers is None and payload_digest
                and not headers.get_header("WARC-Block-Digest")):
            headers.add_header("WARC-Block-Digest", payload_digest)
        super().ensure_digest(record, block=block, payload=payload)  # type: ignore[no-untyped-call]

    def _make_warc_id(self) -> str:  # type: ignore[override]
        return self._make_id()

    def curr_warc_date(self) -> str:
        return warc_date(self._clock())


# The attribute holding the body of a record built complete (final headers, digests and length): ``to_bytes``
# writes such a record without warcio's writer.
_COMPLETE = "_listwatch_complete"


def _complete_record(record_type: str, headers: Headers, body: bytes, http: StatusAndHeaders | None,
                     content_type: str, payload_digest: str = "") -> ArcWarcRecord:
    """An ``ArcWarcRecord`` whose headers are what warcio's writer would end with: ``headers`` (WARC-Date,
    extras, WARC-Type, WARC-Record-ID, WARC-Target-URI), then the payload and block digests, Content-Type
    and Content-Length. ``payload_digest``: ``sha256_digest(body)`` when the caller has it already."""
    payload_digest = payload_digest or (sha256_digest(body) if body else _EMPTY_DIGEST)   # requests: no body
    headers.append(("WARC-Payload-Digest", payload_digest))
    if http is None:
        block_digest, length = payload_digest, len(body)
    else:
        http.compute_headers_buffer()   # warcio's own (percent-encodes non-ASCII header values)
        head = http.headers_buff or b""
        block_digest, length = sha256_digest(head, body), len(head) + len(body)
    headers += [("WARC-Block-Digest", block_digest), ("Content-Type", content_type),
                ("Content-Length", str(length))]
    warc_headers = StatusAndHeaders("", headers, protocol="WARC/1.1")
    record = ArcWarcRecord("warc", record_type, warc_headers, BytesIO(body), http, content_type, length)
    record.payload_length = len(body)
    setattr(record, _COMPLETE, body)
    return record


def _complete_bytes(record: ArcWarcRecord, body: bytes) -> bytes:
    head = record.rec_headers.to_bytes(encoding="utf-8")
    http = record.http_headers.headers_buff if record.http_headers is not None else b""
    return b"".join((head, http or b"", body, b"\r\n\r\n"))


REVISIT_PROFILES = "http://netpreserve.org/warc/1.1/revisit/"   # + identical-payload-digest | server-not-modified


def warc_date(moment: datetime) -> str:
    return datetime_to_iso_date(moment.astimezone(UTC).replace(tzinfo=None), use_micros=True)


def status_line(status: int, reason: str = "") -> str:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
    return f"{status} {reason}"


class RecordBuilder:
    """Makes the records listwatch writes. One instance per crawl."""

    def __init__(
        self,
        clock: Callable[[], datetime] = utcnow,
        make_id: Callable[[], str] = new_record_id,
    ) -> None:
        self.clock = clock
        self._w = _Sha256Writer(clock, make_id)

    def now(self) -> str:
        return warc_date(self.clock())

    def warcinfo(self, filename: str, info: dict[str, str]) -> ArcWarcRecord:
        return self._w.create_warcinfo_record(filename, info)

    def request(
        self,
        url: str,
        method: str,
        headers: Headers,
        body: bytes = b"",
        *,
        protocol: str = "HTTP/1.1",
        date: str,
        concurrent_to: str,
    ) -> ArcWarcRecord:
        target = _request_target(url)
        http = StatusAndHeaders(f"{method} {target} {protocol}", headers, protocol=protocol,
                                is_http_request=True)
        warc_headers = [("WARC-Date", date), ("WARC-Concurrent-To", concurrent_to)]
        return _complete_record("request", self._identify(warc_headers, "request", url), body, http,
                                "application/http; msgtype=request")

    def response(
        self,
        url: str,
        status: int,
        headers: Headers,
        body: bytes,
        *,
        reason: str = "",
        protocol: str = "HTTP/1.1",
        ip_address: str | None = None,
        date: str | None = None,
        extra: dict[str, str] | None = None,
        payload_digest: str = "",
    ) -> ArcWarcRecord:
        """``payload_digest``: ``sha256_digest(body)`` when the caller has it already (not hashed again)."""
        http = StatusAndHeaders(status_line(status, reason), headers, protocol=protocol)
        if not extra:   # extras may name headers warcio would replace: those go warcio's way
            plain = [("WARC-Date", date or self.now())]
            if ip_address:
                plain.append(("WARC-IP-Address", ip_address))
            return _complete_record("response", self._identify(plain, "response", url), body, http,
                                    "application/http; msgtype=response", payload_digest)
        warc_headers = {"WARC-Date": date or self.now(), **(extra or {})}
        if ip_address:
            warc_headers["WARC-IP-Address"] = ip_address
        self._w.known_payload_digest = payload_digest
        try:
            return self._w.create_warc_record(
                url, "response", payload=BytesIO(body), length=len(body), http_headers=http,
                warc_headers_dict=warc_headers,
            )
        finally:
            self._w.known_payload_digest = ""

    def revisit(
        self,
        url: str,
        status: int,
        headers: Headers | None,
        *,
        payload_digest: str,
        refers_to_uri: str,
        refers_to_date: str,
        refers_to: str | None = None,
        profile: str = "identical-payload-digest",
        protocol: str = "HTTP/1.1",
        ip_address: str | None = None,
        date: str | None = None,
    ) -> ArcWarcRecord:
        """Built complete, in the order warcio's ``create_revisit_record`` + writer give (a test compares)."""
        http = StatusAndHeaders(status_line(status), headers, protocol=protocol) if headers is not None else None
        warc_headers = [("WARC-Date", date or self.now())]
        if ip_address:
            warc_headers.append(("WARC-IP-Address", ip_address))
        if refers_to:
            warc_headers.append(("WARC-Refers-To", refers_to))
        warc_headers = self._identify(warc_headers, "revisit", url)
        warc_headers += [("WARC-Profile", REVISIT_PROFILES + profile), ("WARC-Refers-To-Target-URI", refers_to_uri),
                         ("WARC-Refers-To-Date", refers_to_date), ("WARC-Payload-Digest", payload_digest)]
        head = b""
        if http is not None:
            http.compute_headers_buffer()   # warcio's own (percent-encodes non-ASCII header values)
            head = http.headers_buff or b""
        # The block is the HTTP head alone (or nothing): the payload is the earlier capture's.
        warc_headers += [("WARC-Block-Digest", sha256_digest(head) if head else _EMPTY_DIGEST),
                         ("Content-Type", "application/http; msgtype=response"), ("Content-Length", str(len(head)))]
        record = ArcWarcRecord("warc", "revisit", StatusAndHeaders("", warc_headers, protocol="WARC/1.1"),
                               BytesIO(b""), http, "application/http; msgtype=response", len(head))
        record.payload_length = 0
        setattr(record, _COMPLETE, b"")
        return record

    def resource(
        self, uri: str, content_type: str, body: bytes, *, refers_to: str | None = None,
        date: str | None = None, record_type: str = "resource",
    ) -> ArcWarcRecord:
        warc_headers = [("WARC-Date", date or self.now())]
        if refers_to:
            # WARC 1.1: WARC-Refers-To "shall not be used in ... 'resource' ... records" (it may on metadata and
            # conversion). A page's DOM or screenshot names the page's response as WARC-Concurrent-To instead.
            link = "WARC-Concurrent-To" if record_type == "resource" else "WARC-Refers-To"
            warc_headers.append((link, refers_to))
        return _complete_record(record_type, self._identify(warc_headers, record_type, uri), body, None,
                                content_type)

    def metadata(self, uri: str, data: dict[str, Any], *, refers_to: str | None = None,
                 date: str | None = None, content_type: str = "application/json") -> ArcWarcRecord:
        body = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
        return self.resource(uri, content_type, body, refers_to=refers_to, date=date,
                             record_type="metadata")

    def _identify(self, headers: Headers, record_type: str, uri: str) -> Headers:
        """What warcio adds after the caller's headers, in its order: type, record id, target URI."""
        headers += [("WARC-Type", record_type), ("WARC-Record-ID", self._w._make_warc_id())]
        if uri:
            headers.append(("WARC-Target-URI", uri))
        return headers

    def to_bytes(self, record: ArcWarcRecord) -> bytes:
        """Serialise one record, uncompressed, exactly as warcio writes it."""
        body = getattr(record, _COMPLETE, None)
        if body is not None:
            return _complete_bytes(record, body)
        out = BytesIO()
        self._w.out = out
        self._w.write_record(record)
        return out.getvalue()


def record_id(record: ArcWarcRecord) -> str:
    return str(record.rec_headers.get_header("WARC-Record-ID"))


def clean_headers(pairs: Iterable[tuple[str, str]], drop: set[str]) -> Headers:
    return [(k, v) for k, v in pairs if k.lower() not in drop]


def _request_target(url: str) -> str:
    parts = urlsplit(url)
    target = parts.path or "/"
    return f"{target}?{parts.query}" if parts.query else target
