"""WARC capture for Scrapy: an extension that owns the crawl's WARC writer, and a downloader
middleware that records every plain-HTTP exchange.

The middleware sits at priority 950 (``LISTWATCH_CAPTURE_PRIORITY``): it sees the final request
headers and the response body still compressed with ``Content-Encoding`` intact — the closest to
wire bytes Scrapy offers. Browser-rendered requests are captured from the page's own network
events instead (``crawlers.browser``).
"""

from __future__ import annotations

import codecs
import logging
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Headers as ScrapyHeaders
from scrapy.http import HtmlResponse, Response

from archive.background import ThreadedWarcWriter
from archive.dedup import DedupIndex, Earlier
from archive.records import (
    HOP_BY_HOP,
    ITEMS_URN,
    POINTER_TYPE,
    Headers,
    clean_headers,
    record_id,
    sha256_digest,
)
from archive.writer import RollingWarcWriter
from crawlers.fetch_policy import origin_prefix
from crawlers.secret_headers import redact

logger = logging.getLogger(__name__)


def scrapy_headers(headers: Any) -> Headers:
    """Scrapy's multi-valued bytes headers as (name, value) text pairs, order kept.

    Read straight from the dict Scrapy's ``Headers`` is (keys already normalised, values lists of bytes):
    ``Headers.items()`` normalises each key again, which cost more than the rest of the capture's header work.
    """
    items = dict.items(headers) if isinstance(headers, dict) else headers.items()
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, values in items for value in values]


def header_text(response: Response, name: str) -> str:
    """One response header as text ("" when absent)."""
    return (response.headers.get(name) or b"").decode("latin-1")


def scrapy_utf8_text(response: Response) -> str | None:
    """Scrapy's own decoding of an HTML page when it read it as UTF-8 (its meta-refresh middleware decodes
    every HTML page): our decoding takes it rather than decoding the bytes once more (``decode_body``)."""
    if not isinstance(response, HtmlResponse):
        return None
    try:
        utf8 = codecs.lookup(response.encoding).name == "utf-8"
    except LookupError:
        return None
    return str(response.text) if utf8 else None


def body_problem(response: Response, max_size: int = 30_000_000) -> str | None:
    """Say why a compressed body is damaged (Scrapy silently keeps whatever part it could inflate).

    Inflates in bounded steps and throws the output away, stopping past ``max_size``: a 1 MiB gzip bomb
    must not become gigabytes here (a body that large is refused by Scrapy's decompression cap anyway).
    """
    encoding = header_text(response, "Content-Encoding").lower().encode()
    if encoding in (b"", b"identity") and "partial" in response.flags and _unfinished_html(response):
        return ("the connection closed mid-page (the server sent no Content-Length) and the HTML stops before "
                "its end: only part of the page arrived")
    if encoding == b"br" and response.body:
        return _brotli_problem(response.body, max_size)
    if encoding not in (b"gzip", b"x-gzip", b"deflate") or not response.body:
        return None
    inflater = zlib.decompressobj(47 if encoding != b"deflate" else zlib.MAX_WBITS)
    data, inflated = response.body, 0
    try:
        while data and not inflater.eof:
            inflated += len(inflater.decompress(data, _INFLATE_STEP))
            data = inflater.unconsumed_tail
            if inflated > max_size:
                return None  # too large to matter: Scrapy's HttpCompressionMiddleware refuses it
    except zlib.error as exc:
        return f"the {encoding.decode()} body is corrupt ({exc}); only part of the page could be read"
    if not inflater.eof:
        return f"the {encoding.decode()} body is truncated; only part of the page could be read"
    return None


_INFLATE_STEP = 1 << 20


def _brotli_problem(body: bytes, max_size: int) -> str | None:
    """As for gzip: Scrapy keeps what a truncated brotli stream gave (its decoder stops without an error)."""
    try:
        import brotli
    except ImportError:  # then Scrapy does not ask for br either
        return None
    inflater, inflated = brotli.Decompressor(), 0
    try:
        chunk = inflater.process(body, output_buffer_limit=_INFLATE_STEP)
        while chunk and inflated <= max_size and not inflater.is_finished():
            inflated += len(chunk)
            chunk = inflater.process(b"", output_buffer_limit=_INFLATE_STEP)
    except brotli.error as exc:
        return f"the br body is corrupt ({exc}); only part of the page could be read"
    if inflated <= max_size and not inflater.is_finished():
        return "the br body is truncated; only part of the page could be read"
    return None
_HTML_ENDS = tuple(end.encode(codec) for end in ("</html", "</body") for codec in ("ascii", "utf-16-le", "utf-16-be"))


def _unfinished_html(response: Response) -> bool:
    """An HTML body whose last bytes close neither ``<body>`` nor ``<html>``.

    Only asked of a body the connection's close delimited (Scrapy flags it ``partial``: no Content-Length, not
    chunked), which is also how a reset mid-page looks; a listing cut in half would otherwise be a whole page
    holding half the programmes, and the other half would be declared removed.
    """
    if "html" not in header_text(response, "Content-Type").lower():
        return False
    tail = response.body[-4096:].lower()
    return not any(end in tail for end in _HTML_ENDS)


class WarcCapture:
    """Extension: one rolling WARC writer per crawl, closed (and renamed) when the spider closes."""

    def __init__(self, writer: RollingWarcWriter, dedup: DedupIndex | None = None, source_id: str = "",
                 secret_headers: tuple[str, ...] = ()) -> None:
        self.writer = writer
        self.builder = writer.builder
        self.dedup = dedup
        self.source_id = source_id
        self.last_date = ""  # WARC-Date of the last response or revisit written
        self.last_original: Earlier | None = None  # the capture that last revisit refers to (None: a full response)
        self.secret_headers = secret_headers  # request headers whose values are written as [redacted]
        self.write_error: OSError | None = None  # why writing stopped (disk full…), for the run's report
        # Per origin ("scheme://host:port"), the headers of the last request Scrapy sent there and got an answer
        # to: what crawlers.revalidate sends its conditional GETs with.
        self.sent: dict[str, Headers] = {}
        self._loaded: dict[str, dict[str, Any] | None] = {}   # extractions read for a page asked about again
        self._closed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCapture:
        settings = crawler.settings
        spool = settings.get("LISTWATCH_SPOOL_DIR")
        if not spool:
            raise NotConfigured("LISTWATCH_SPOOL_DIR is not set: WARC capture is off")
        source_id = settings.get("LISTWATCH_SOURCE_ID", "adhoc")
        info = {
            "operator": settings.get("LISTWATCH_OPERATOR", ""),
            "isPartOf": source_id,
            "description": f"listwatch crawl {settings.get('LISTWATCH_RUN_ID', '')} of {source_id}",
            "robots": "obey" if settings.getbool("ROBOTSTXT_OBEY") else "ignore",
            "http-header-user-agent": settings.get("USER_AGENT", ""),
        }
        writer = ThreadedWarcWriter(   # gzip and writes on a second core: the reactor thread is the bottleneck
            Path(spool),
            prefix=settings.get("LISTWATCH_WARC_PREFIX", source_id),
            warcinfo={k: v for k, v in info.items() if v},
            max_size=settings.getint("LISTWATCH_WARC_MAX_SIZE", 1_000_000_000),
        )
        dedup: DedupIndex | None = getattr(crawler, "listwatch_dedup", None)
        if dedup is not None:
            dedup.prepare(source_id)  # the catalog's view of the source, loaded before the first request
        extension = cls(writer, dedup, source_id, tuple(settings.getlist("LISTWATCH_SECRET_HEADERS")))
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_closed(self, spider: Spider) -> None:
        files = self.close()
        spider.crawler.stats.set_value("listwatch/warc_files", [str(f) for f in files])
        spider.crawler.stats.set_value("listwatch/warc_bytes", self.writer.bytes_written)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> list[Path]:
        """Close the writer once (this extension and the spider both ask, in either order); returns the closed
        files. A failed write is kept in ``write_error`` rather than raised, so the run's report names it."""
        if not self._closed:
            self._closed = True
            if self.dedup is not None:
                self.dedup.close_files(self.source_id)
            try:
                self.writer.close()
            except OSError as exc:
                self.write_error = exc
        return list(self.writer.closed_files)

    def write(self, *records: Any) -> None:
        try:
            self.writer.submit(*records)
        except OSError as exc:   # this page's capture fails; the run's report says why writing stopped
            self.write_error = self.write_error or exc
            raise

    def exchange(
        self,
        *,
        url: str,
        method: str,
        request_headers: Headers,
        request_body: bytes,
        status: int,
        response_headers: Headers,
        body: bytes,
        reason: str = "",
        protocol: str = "HTTP/1.1",
        ip_address: str | None = None,
    ) -> str:
        """Write a request + response pair; returns the response (or revisit) record's id.

        A payload the archive already holds becomes an identical-payload-digest ``revisit``.
        """
        date = self.last_date = self.builder.now()
        earlier, digest = self._earlier(status, body)
        self.last_original = earlier
        if earlier is not None:
            response = self.builder.revisit(url, status, response_headers, payload_digest=digest,
                                            refers_to_uri=earlier.url, refers_to_date=earlier.warc_date,
                                            refers_to=earlier.record_id, protocol=protocol,
                                            ip_address=ip_address, date=date)
        else:
            response = self.builder.response(url, status, response_headers, body, reason=reason,
                                             protocol=protocol, ip_address=ip_address, date=date,
                                             payload_digest=digest)  # hashed once, for dedup and the record
        response_id = record_id(response)
        if self.dedup is not None and earlier is None and digest:
            self.dedup.remember(digest, self.source_id, Earlier(url, date, response_id, digest))
        request = self.builder.request(url, method, redact(request_headers, self.secret_headers), request_body,
                                       protocol=protocol, date=date, concurrent_to=response_id)
        self.write(response, request)
        return response_id

    def _earlier(self, status: int, body: bytes) -> tuple[Earlier | None, str]:
        if self.dedup is None or not 200 <= status < 300 or not body:
            return None, ""
        digest = sha256_digest(body)
        return self.dedup.by_digest(digest, self.source_id), digest

    def not_modified(self, *, url: str, method: str, request_headers: Headers, status: int, earlier: Earlier,
                     ip_address: str | None) -> str:
        """A 304 answer to our conditional GET: a server-not-modified revisit + its request.

        The revisit's block is left empty rather than holding the 304's headers: replay tools (pywb)
        serve a revisit with its own HTTP headers when it has them, and a 304 status line replays as
        an empty page. Empty, they take the original response's headers. The request record keeps the
        validators we sent and the profile says the server answered "not modified".
        """
        date = self.last_date = self.builder.now()
        self.last_original = earlier
        revisit = self.builder.revisit(url, status, None, payload_digest=earlier.payload_digest,
                                       refers_to_uri=earlier.url, refers_to_date=earlier.warc_date,
                                       refers_to=earlier.record_id, profile="server-not-modified",
                                       ip_address=ip_address, date=date)
        revisit_id = record_id(revisit)
        request = self.builder.request(url, method, redact(request_headers, self.secret_headers), date=date,
                                       concurrent_to=revisit_id)
        self.write(revisit, request)
        return revisit_id

    def page_metadata(self, url: str, refers_to: str | None, data: dict[str, Any], *, date: str | None = None,
                      original: Earlier | None = None) -> str | None:
        """A ``metadata`` record at ``urn:items:<url>`` holding what was extracted from the page, dated with
        the page's own capture (``date``): page and extraction share one moment, by which they are matched.

        Not at the page's own URL: replay tools index metadata records and would serve them instead.
        An unchanged page (its record a revisit of ``original``) whose extraction equals the one archived
        with ``original`` writes nothing: readers follow the revisit's WARC-Refers-To to that capture and
        take its extraction. If it equals another archived extraction (rules changed and changed back), the
        record only points at it: ``{"role", "page"|"key", "same_as": <record id>}``. Returns the record
        written, if any.
        """
        record = self.builder.metadata(ITEMS_URN + url, data, refers_to=refers_to, date=date)
        if original is not None and self.dedup is not None:
            digest = str(record.rec_headers.get_header("WARC-Payload-Digest"))
            if original.url == url and self.dedup.original_metadata(original, self.source_id) == digest:
                return None
            same = self.dedup.same_metadata(ITEMS_URN + url, digest, self.source_id)
            if same is not None:
                return self.pointer_metadata(url, refers_to, data, same)
        self.write(record)
        return record_id(record)

    def pointer_metadata(self, url: str, refers_to: str | None, data: dict[str, Any], same_as: str) -> str:
        """The metadata record of an unchanged extraction: ``{"role", "page"|"key", "same_as": <record id>}``."""
        pointer: dict[str, Any] = {k: data[k] for k in ("role", "page", "key") if k in data}
        record = self.builder.metadata(ITEMS_URN + url, {**pointer, "same_as": same_as}, refers_to=refers_to,
                                       content_type=POINTER_TYPE)
        self.write(record)
        return record_id(record)

    def reusable_extraction(self, url: str, role: str | None, rules: str, earlier: Earlier, *,
                            again: bool = False) -> tuple[str | None, dict[str, Any]] | None:
        """An unchanged page's last full extraction, made with the same ``rules`` and without problems (a page
        that had some is extracted again, so this crawl reports them too): (None, data) when it is the one
        archived with ``earlier``, the capture the revisit refers to (nothing to write), else (its record id,
        data) for a pointer. ``again``: the page may be asked about once more (Scrapy's path after a probe that
        was not answered 304), which then takes what was read here: a record read ahead from the store is
        handed over once, and reading it twice cost a GET per page."""
        if self.dedup is None:
            return None
        found = self.dedup.extraction(url, self.source_id)
        if found is None:
            return None
        data = self._loaded.pop(url) if url in self._loaded else self.dedup.load_extraction(found, self.source_id)
        if again:
            self._loaded[url] = data
        if data is None or data.get("rules") != rules or data.get("problems") or data.get("role") != role:
            return None
        if data.get("role") == "listing" and not data.get("items"):
            return None  # an empty listing page may be the documented end of paging: the spider decides again
        return (None if found.warc_date == earlier.warc_date else found.record_id), data

    def settled(self, url: str) -> None:
        """The page asked about with ``again`` will not be asked about again."""
        self._loaded.pop(url, None)


def close_capture(crawler: Crawler) -> bool:
    """Close a finished crawl's capture if its spider's close did not (idempotent): its writer thread ends and
    its queued records are written, and its last file is closed rather than left ``.open`` until salvage. The
    crawl's close normally does it; this holds whatever ended the crawl. True when it had to."""
    try:
        capture = crawler.get_extension(WarcCapture)
    except RuntimeError:   # the crawl ended before its extensions existed: nothing was captured
        return False
    if capture is None or capture.closed:
        return False
    logger.warning("the crawl ended without closing its WARC capture: closed now")
    capture.close()
    return True


class WarcCaptureMiddleware:
    """Downloader middleware: each plain-HTTP response becomes WARC request + response records.

    The response record id is left in ``request.meta["warc_record_id"]`` for the spider.
    """

    def __init__(self, capture: WarcCapture, conditional: bool = True, max_size: int = 30_000_000) -> None:
        self.capture = capture
        self.conditional = conditional and capture.dedup is not None
        self.max_size = max_size or 1 << 30   # DOWNLOAD_MAXSIZE (0 means no limit; keep a ceiling)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCaptureMiddleware:
        capture = crawler.get_extension(WarcCapture)
        if capture is None:
            raise NotConfigured("WarcCapture extension is not enabled")
        return cls(capture, crawler.settings.getbool("LISTWATCH_CONDITIONAL_GET", True),
                   crawler.settings.getint("DOWNLOAD_MAXSIZE"))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        """Ask only for what changed: validators from the last full capture of this URL."""
        if not self.conditional or request.method != "GET" or request.meta.get("playwright"):
            return
        if request.meta.get("role") not in ("listing", "detail", "attachment", "recheck"):
            return
        if request.meta.get("listwatch_unconditional"):
            return
        assert self.capture.dedup is not None
        earlier = self.capture.dedup.validators(request.url, self.capture.source_id)
        if earlier is None:
            return
        if earlier.etag:
            request.headers["If-None-Match"] = earlier.etag
        if earlier.last_modified:
            request.headers["If-Modified-Since"] = earlier.last_modified
        request.meta["listwatch_conditional"] = earlier

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Response | Request:
        if request.meta.get("playwright"):
            return response  # captured from the browser's network events
        request_headers = scrapy_headers(request.headers)
        if not any(k.lower() == "host" for k, _ in request_headers):
            request_headers.insert(0, ("Host", urlsplit(request.url).netloc))
        ip = str(response.ip_address) if response.ip_address is not None else None
        if response.status < 400 and request.meta.get("role") in ("listing", "detail"):
            self.capture.sent[origin_prefix(request.url)] = request_headers
        earlier: Earlier | None = request.meta.get("listwatch_conditional")
        if response.status == 304 and earlier is not None:
            return self._not_modified(request, response, request_headers, earlier, ip)
        problem = body_problem(response, int(request.meta.get("download_maxsize") or self.max_size))
        if problem:
            request.meta["listwatch_body_problem"] = problem
        request.meta["warc_record_id"] = self.capture.exchange(
            url=request.url,
            method=request.method,
            request_headers=request_headers,
            request_body=request.body,
            status=response.status,
            response_headers=clean_headers(scrapy_headers(response.headers), HOP_BY_HOP),
            body=response.body,
            protocol="HTTP/1.1",  # Scrapy's HTTP/1.1 handler; the response's own version is in its status line
            ip_address=ip,
        )
        request.meta["warc_date"] = self.capture.last_date  # the capture time extraction resolves dates against
        original = request.meta["listwatch_original"] = self.capture.last_original
        if original is not None and not problem:
            reused = self._same_payload_extraction(request, original)
            if reused is not None:
                request.meta["listwatch_reused"] = reused
        return response

    def _not_modified(self, request: Request, response: Response, request_headers: Headers, earlier: Earlier,
                      ip: str | None) -> Response | Request:
        """Record the 304 as a revisit and hand the earlier payload to the spider, or fetch in full."""
        revisit_id = self.capture.not_modified(
            url=request.url, method=request.method, request_headers=request_headers, status=response.status,
            earlier=earlier, ip_address=ip)
        request.meta.update(warc_record_id=revisit_id, warc_date=self.capture.last_date, listwatch_original=earlier)
        reused = self._earlier_extraction(request, earlier)
        if reused is not None and not request.meta.get("listwatch_page_needed"):
            request.meta["listwatch_reused"] = reused  # the spider takes the earlier extraction: nothing to parse
            request.meta["handle_httpstatus_list"] = [304]  # the 304 itself goes to the spider: no copy made
            request.meta["dont_redirect"] = True  # its empty body holds no meta refresh to look for
            return response
        assert self.capture.dedup is not None
        loaded = self.capture.dedup.load_payload(earlier, self.capture.source_id)
        if loaded is None:
            logger.warning("%s: not modified, but the earlier capture %s cannot be read; fetching it again",
                           request.url, earlier.record_id)
            retry = request.replace(dont_filter=True)
            retry.meta["listwatch_unconditional"] = True
            for name in ("If-None-Match", "If-Modified-Since"):
                retry.headers.pop(name, None)
            return retry
        headers, body = loaded
        if reused is not None:  # a listing page: its items are reused, its pagination read from the payload
            request.meta["listwatch_reused"] = reused
        return response.replace(status=200, headers=scrapy_headers_from(headers), body=body)

    def _same_payload_extraction(self, request: Request, original: Earlier) -> tuple[None, dict[str, Any]] | None:
        """A 200 whose payload the archive already holds for this URL (an identical-payload-digest revisit, from a
        server without validators): the extraction archived with that very capture, as for a 304. Only that
        one: a newer extraction of the URL may be of other bytes (the page changed, then changed back). Not after
        a redirect, where the page answering is not the one asked for (its gone verdict reads both URLs)."""
        if original.url != request.url or request.meta.get("redirect_urls"):
            return None
        reused = self._earlier_extraction(request, original)
        return (None, reused[1]) if reused is not None and reused[0] is None else None

    def _earlier_extraction(self, request: Request, earlier: Earlier) -> tuple[str | None, dict[str, Any]] | None:
        rules = request.meta.get("listwatch_rules")
        return None if rules is None else \
            self.capture.reusable_extraction(request.url, request.meta.get("role"), rules, earlier)


def scrapy_headers_from(pairs: Headers) -> ScrapyHeaders:
    headers = ScrapyHeaders()
    for name, value in pairs:
        headers.appendlist(name, value)
    return headers
