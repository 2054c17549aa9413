"""Build WARC 1.1 records: SHA-256 digests, injectable clock and record ids.

Building a record is separate from writing it (as in warcio): this module returns warcio
``ArcWarcRecord`` objects and serialises one record to uncompressed bytes; ``archive.writer``
compresses and stores them.
"""

from __future__ import annotations

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


def sha256_digest(data: bytes) -> str:
    """The digest string used in WARC headers and the dedup index (``sha256:BASE32``)."""
    digester = Digester("sha256")
    digester.update(data)
    return str(digester)


class _Sha256Writer(WARCWriter):
    """warcio's writer with SHA-256 digests and an injectable clock and id source."""

    def __init__(self, clock: Callable[[], datetime], make_id: Callable[[], str]) -> None:
        super().__init__(BytesIO(), gzip=False, warc_version="1.1")
        self._clock = clock
        self._make_id = make_id

    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")

    def _make_warc_id(self) -> str:  # type: ignore[override]
        return self._make_id()

    def curr_warc_date(self) -> str:
        return warc_date(self._clock())


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
        return self._w.create_warc_record(
            url, "request", payload=BytesIO(body), length=len(body), http_headers=http,
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": concurrent_to},
        )

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
    ) -> ArcWarcRecord:
        http = StatusAndHeaders(status_line(status, reason), headers, protocol=protocol)
        warc_headers = {"WARC-Date": date or self.now(), **(extra or {})}
        if ip_address:
            warc_headers["WARC-IP-Address"] = ip_address
        return self._w.create_warc_record(
            url, "response", payload=BytesIO(body), length=len(body), http_headers=http,
            warc_headers_dict=warc_headers,
        )

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
        http = StatusAndHeaders(status_line(status), headers, protocol=protocol) if headers is not None else None
        warc_headers = {"WARC-Date": date or self.now()}
        if ip_address:
            warc_headers["WARC-IP-Address"] = ip_address
        if refers_to:
            warc_headers["WARC-Refers-To"] = refers_to
        record = self._w.create_revisit_record(url, payload_digest, refers_to_uri, refers_to_date,
                                               http_headers=http, warc_headers_dict=warc_headers)
        if profile == "server-not-modified":
            record.rec_headers.replace_header(
                "WARC-Profile", "http://netpreserve.org/warc/1.1/revisit/server-not-modified")
        return record

    def resource(
        self, uri: str, content_type: str, body: bytes, *, refers_to: str | None = None,
        date: str | None = None, record_type: str = "resource",
    ) -> ArcWarcRecord:
        warc_headers = {"WARC-Date": date or self.now()}
        if refers_to:
            warc_headers["WARC-Refers-To"] = refers_to
        return self._w.create_warc_record(
            uri, record_type, payload=BytesIO(body), length=len(body),
            warc_content_type=content_type, warc_headers_dict=warc_headers,
        )

    def metadata(self, uri: str, data: dict[str, Any], *, refers_to: str | None = None,
                 date: str | None = None, content_type: str = "application/json") -> ArcWarcRecord:
        body = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
        return self.resource(uri, content_type, body, refers_to=refers_to, date=date,
                             record_type="metadata")

    def to_bytes(self, record: ArcWarcRecord) -> bytes:
        """Serialise one record, uncompressed, exactly as warcio writes it."""
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
