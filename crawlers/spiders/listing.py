"""The one config-driven listing spider: listing pages → items → detail pages → attachments.

Every page is archived by the capture layer before this spider sees it; the spider adds a
``metadata`` record per listing/detail page tying the extracted items to the response record.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy_playwright.page import PageMethod
from twisted.python.failure import Failure

from crawlers.browser import PageCapture
from crawlers.capture import WarcCapture, header_text
from crawlers.challenge import detect_challenge
from crawlers.encoding import decode_body
from crawlers.errors import describe_failure
from crawlers.extract import (
    FEED_ITEMS,
    Node,
    apply_rule,
    convert,
    extract_fields,
    extract_items,
    label_table,
    normalise_key,
    outlinks,
    parse_document,
)
from crawlers.gone import gone_reason
from crawlers.offline import document_kind, page_text
from crawlers.pagination import expected_page_count, next_pages
from crawlers.report import CrawlReport
from crawlers.sources import Source, load_source

Hook = Callable[[Response, list[dict[str, Any]], Source], list[dict[str, Any]]]


def load_hook(spec: str) -> Hook:
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"hook {spec!r} cannot be loaded: {exc}") from None


class ListingSpider(Spider):
    name = "listing"

    def __init__(self, source: Source | str, run_id: str = "adhoc", kind: str = "full",
                 recheck: list[tuple[str, str]] | None = None,
                 known: Callable[[list[str]], set[str]] | None = None, **kwargs: Any) -> None:
        self.source = source if isinstance(source, Source) else load_source(Path(source))
        super().__init__(name=self.name, **kwargs)
        self.kind = kind
        self.recheck = recheck or []
        self.known = known  # which of these keys the archive already has (quick checks)
        self.items_rules = self.source.items or FEED_ITEMS
        self.hook = load_hook(self.source.hook) if self.source.hook else None
        self.report = CrawlReport(self.source.id, run_id, kind=kind, started=_now())
        self.capture: WarcCapture | None = None
        self._background: set[asyncio.Future[None]] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ListingSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._closed, signal=signals.spider_closed)
        crawler.signals.connect(spider._callback_error, signal=signals.spider_error)
        return spider

    def _callback_error(self, failure: Failure, response: Response, spider: Spider) -> None:
        """A bug or a hook failing on a page: the page counts as failed, so the crawl is incomplete."""
        role = response.meta.get("role", "listing") if response.request is not None else "listing"
        self.report.problem(response.url, role, "extraction-error",
                            f"extraction failed on this page: {type(failure.value).__name__}: {failure.value}")
        if role == "listing":
            self.report.pagination_finished = False

    async def start(self) -> AsyncIterator[Request]:
        self.capture = self.crawler.get_extension(WarcCapture)
        for url in self.source.start_urls:
            yield self._listing(url, 1, url)
        for key, url in self.recheck:
            # Known programmes missing from the listing: is their detail page still there?
            yield Request(url, callback=self.parse_recheck, errback=self.failed, cb_kwargs={"key": key},
                          meta={"role": "recheck"}, dont_filter=True)

    # -- requests ------------------------------------------------------------------------------

    def _listing(self, url: str, number: int, start_url: str) -> Request:
        return self._request(url, "listing", self.parse_listing, self.source.render.mode == "browser",
                             number=number, start_url=start_url)

    def _request(self, url: str, role: str, callback: Callable[..., Any], render: bool,
                 **cb_kwargs: Any) -> Request:
        meta: dict[str, Any] = {"role": role}
        if render:
            rules = self.source.render
            wait_for = rules.wait_for if role == "listing" else (self.source.detail.wait_for if self.source.detail
                                                                  else None)
            methods = [PageMethod("wait_for_selector", wait_for, state="attached", timeout=rules.timeout * 1000)] \
                if wait_for else []
            meta.update(
                playwright=True,
                playwright_include_page=True,
                playwright_page_goto_kwargs={"wait_until": rules.wait_until, "timeout": rules.timeout * 1000},
                playwright_page_methods=methods,
            )
            if self.capture is not None:
                page_capture = PageCapture(self.capture, url)
                meta["playwright_page_event_handlers"] = {"response": page_capture.on_response}
                meta["listwatch_page_capture"] = page_capture
        return Request(url, callback=callback, errback=self.failed, cb_kwargs=cb_kwargs, meta=meta,
                       dont_filter=role == "listing")

    # -- callbacks -----------------------------------------------------------------------------

    async def parse_listing(self, response: Response, number: int, start_url: str) -> AsyncIterator[Any]:
        record = await self._settle(response)
        doc = self._document(response, "listing", record)
        if doc is None:
            self.report.pagination_finished = False
            return
        found = extract_items(doc, self.items_rules, response.url)
        if self.hook:
            found = self.hook(response, found, self.source)
        self.report.pages_ok["listing"] += 1
        if number == 1:
            self.report.listing_pages_expected = expected_page_count(self.source.pagination, doc, response.url)
        made = (self._item(fields, response.url, number, i, record) for i, fields in enumerate(found))
        items = [item for item in made if item is not None]
        if self.capture is not None:
            self.capture.page_metadata(response.url, record, {
                "role": "listing", "page": number, "outlinks": outlinks(doc, response.url),
                "items": [{k: i[k] for k in ("key", "position", "fields")} for i in items],
            }, unchanged=self._unchanged(response))
        following = next_pages(self.source.pagination, start_url=start_url, url=response.url,
                               number=number, doc=doc, item_count=len(found))
        if number >= self.source.pagination.max_pages and found and self.source.pagination.kind != "none":
            self.report.pagination_finished = False  # stopped by the page limit, more may exist
        if self.kind == "quick":
            items, following = self._quick(items, following, number)
        for page in following:
            yield self._listing(page.url, page.number, start_url)
        for item in items:
            detail = self.source.detail
            link = item["fields"].get(detail.link) if detail else None
            if detail and isinstance(link, str) and link.startswith(("http://", "https://")):
                yield self._request(link, "detail", self.parse_detail,
                                    detail.render and self.source.render.mode == "browser", item=item)
            else:
                self.report.items += 1
                yield item

    def _quick(self, items: list[dict[str, Any]], following: list[Any],
               number: int) -> tuple[list[dict[str, Any]], list[Any]]:
        """A quick check keeps only new programmes and stops paging at a page without any."""
        known = self.known([i["key"] for i in items]) if self.known else set()
        new = [i for i in items if i["key"] not in known]
        pages = [p for p in following if p.number <= self.source.schedule.quick_pages] if new else []
        self.report.pagination_finished = False  # by design: a quick check never sees the whole listing
        return new, pages

    async def parse_detail(self, response: Response, item: dict[str, Any]) -> AsyncIterator[Any]:
        record = await self._settle(response)
        detail = self.source.detail
        assert detail is not None
        text = self._text(response)
        gone = self._gone(response, text)
        item["detail"] = {"url": response.url, "status": response.status, "record": record, "gone": gone}
        doc = self._document(response, "detail", record, text) if gone is None else None
        if doc is not None:
            extra = extract_fields(doc, detail.fields, response.url)
            if detail.table and hasattr(doc, "css"):
                table = detail.table
                found = label_table(doc, table.rows, table.label, table.value, table.labels)  # type: ignore[arg-type]
                extra.update({k: convert(v, table.types.get(k, "text"), response.url) for k, v in found.items()})
            item["fields"].update({k: v for k, v in extra.items() if v is not None})
            item["detail"]["text"] = page_text(doc)
            self.report.pages_ok["detail"] += 1
            links = self._attachments(doc, response.url)
            item["attachments"] = links
            if self.capture is not None:
                self.capture.page_metadata(response.url, record, {
                    "role": "detail", "key": item["key"], "fields": extra, "attachments": links},
                    unchanged=self._unchanged(response))
            for link in links:
                yield self._attachment(link)
        self.report.items += 1
        yield item

    async def parse_recheck(self, response: Response, key: str) -> AsyncIterator[dict[str, Any]]:
        record = await self._settle(response)
        self.report.pages_ok["recheck"] += 1
        yield {"source": self.source.id, "key": key, "recheck": True,
               "detail": {"url": response.url, "status": response.status, "record": record,
                          "gone": self._gone(response, self._text(response))}}

    def parse_attachment(self, response: Response) -> None:
        self.report.pages_ok["attachment"] += 1

    def failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        role = request.meta.get("role", "listing")
        page = request.meta.get("playwright_page")
        if page is not None:
            task = asyncio.ensure_future(self._abandon(page, request.meta.get("listwatch_page_capture")))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        kind, message = describe_failure(failure)
        if role == "listing" and self._is_end_of_template(request, kind):
            return
        response = getattr(failure.value, "response", None)
        status = response.status if response is not None else None
        gone = f"http-{status}" if status in (404, 410) and role != "listing" else None
        if response is not None and self._challenge(response, role):
            kind = "challenge"
        elif gone is None:
            self.report.problem(request.url, role, kind, message)
        if gone:  # a programme's page that is gone is news, not a crawl failure
            self.logger.info("%s page %s: %s", role, request.url, message)
        else:
            self.logger.warning("%s page %s: %s", role, request.url, message)
        if role == "listing":
            self.report.pagination_finished = False
        failure_detail = {"url": request.url, "status": status, "error": kind, "message": message, "gone": gone}
        if role == "detail":
            item = request.cb_kwargs["item"]
            item["detail"] = failure_detail
            self.report.items += 1
            yield item
        elif role == "recheck":
            yield {"source": self.source.id, "key": request.cb_kwargs["key"], "recheck": True,
                   "detail": failure_detail}

    # -- helpers -------------------------------------------------------------------------------

    async def _settle(self, response: Response) -> str | None:
        """Finish browser capture (DOM, screenshot) and close the page; returns the record id."""
        page = response.meta.get("playwright_page")
        if page is None:
            return response.meta.get("warc_record_id")
        page_capture: PageCapture | None = response.meta.get("listwatch_page_capture")
        try:
            if page_capture is None:
                return None
            return await page_capture.finish(page, screenshot=self.source.render.screenshot)
        finally:
            await page.close()

    async def _abandon(self, page: Any, page_capture: PageCapture | None) -> None:
        """A failed rendered page: keep what it fetched (evidence), then close it."""
        if page_capture is not None:
            await page_capture.finish(page, screenshot=self.source.render.screenshot)
        await page.close()

    def _text(self, response: Response) -> str:
        """The page as text, decoded once the way every step here needs it (never trusting a lying charset)."""
        if response.meta.get("playwright"):
            return str(response.text)  # the rendered DOM, already text
        decoded = decode_body(response.body, header_text(response, "Content-Type"), self.source.encoding)
        if decoded.note:
            self.logger.info("%s: %s; decoded as %s (%s)", response.url, decoded.note, decoded.encoding, decoded.how)
        return decoded.text

    def _document(self, response: Response, role: str, record: str | None, text: str | None = None) -> Node | None:
        """Parse a page, or report it (challenge, undecodable) and return None."""
        content_type = header_text(response, "Content-Type")
        text = self._text(response) if text is None else text
        if self._challenge(response, role, text):
            return None
        if response.meta.get("listwatch_body_problem"):
            self.report.problem(response.url, role, "corrupt-body", response.meta["listwatch_body_problem"])
        kind = document_kind(self.source.format, content_type, text)
        try:
            return parse_document(text, kind)
        except ValueError as exc:
            self.report.problem(response.url, role, "parse", str(exc))
            return None

    @staticmethod
    def _unchanged(response: Response) -> bool:
        return bool(response.meta.get("listwatch_not_modified"))

    def _gone(self, response: Response, text: str) -> str | None:
        redirects = response.meta.get("redirect_urls") or [response.url]
        return gone_reason(response.status, redirects[0], response.url, text, self.source.start_urls)

    def _challenge(self, response: Response, role: str, text: str | None = None) -> bool:
        if text is None:
            text = self._text(response)
        headers = {k.decode(): v[0].decode("latin-1") for k, v in response.headers.items() if v}
        name = detect_challenge(response.status, headers, text)
        if name is None:
            return False
        message = f"{name} challenge page (HTTP {response.status}) archived as evidence, not parsed"
        self.report.problem(response.url, role, "challenge", message)
        self.logger.warning("%s: %s", response.url, message)
        return True

    def _item(self, fields: dict[str, Any], url: str, number: int, position: int,
              record: str | None) -> dict[str, Any] | None:
        key = normalise_key(fields.get(self.items_rules.key), self.items_rules.key_params_drop)
        if not key:
            self.report.problems.append(_problem(url, f"item {position} has no {self.items_rules.key!r}"))
            return None
        return {"source": self.source.id, "key": key, "fields": fields, "listing_url": url,
                "listing_page": number, "position": position, "listing_record": record}

    def _attachments(self, doc: Node, base_url: str) -> list[str]:
        rules = self.source.detail.attachments if self.source.detail else None
        if rules is None:
            return []
        links = apply_rule(doc, rules.selector.model_copy(update={"type": "url", "many": True}), base_url)
        wanted = tuple(f".{ext.lower()}" for ext in rules.extensions)
        return sorted({link for link in links if urlsplit(link).path.lower().endswith(wanted)})

    def _attachment(self, url: str) -> Request:
        limit = self.source.detail.attachments.max_bytes  # type: ignore[union-attr]
        return Request(url, callback=self.parse_attachment, errback=self.failed,
                       meta={"role": "attachment", "download_maxsize": limit, "download_warnsize": 0})

    def _is_end_of_template(self, request: Request, kind: str) -> bool:
        """A missing page after the first ends template paging without a total: not an error."""
        rules = self.source.pagination
        return (kind == "http-404" and rules.kind == "template" and rules.total is None
                and request.cb_kwargs.get("number", 1) > 1)

    def _closed(self, spider: Spider, reason: str) -> None:
        report = self.report
        report.finished = _now()
        report.stop_reason = reason
        if self.capture is not None:
            report.warc_files = [str(p) for p in self.capture.writer.close()]
            report.warc_bytes = self.capture.writer.bytes_written
        run_dir = self.settings.get("LISTWATCH_RUN_DIR")
        if run_dir:
            report.items_path = str(Path(run_dir) / "items.jsonl")
            report.save(Path(run_dir) / "run.json")


def _problem(url: str, message: str) -> Any:
    from crawlers.report import Problem

    return Problem(url, "listing", "parse", message)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
