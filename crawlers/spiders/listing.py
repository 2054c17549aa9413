"""The one config-driven listing spider: listing pages → items → detail pages → attachments.

Every page is archived by the capture layer before this spider sees it; the spider adds a
``metadata`` record per listing/detail page tying the extracted items to the response record.
An unchanged page (304) whose extraction by the same rules is archived takes that extraction instead
(a listing page is still parsed for its pagination) and writes no metadata record. Dates on an unchanged
page are resolved against the capture it repeats (``_dated``), so reused and re-read items agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawlers.capture import WarcCapture, scrapy_headers, scrapy_utf8_text
from crawlers.encoding import Decoded
from crawlers.errors import describe_failure
from crawlers.expect import NO_ITEMS, end_matches, listing_problem
from crawlers.extract import outlinks
from crawlers.extractor import PageResult, decode, extract_page, listing_document
from crawlers.fetch_policy import FetchPolicy
from crawlers.gone import gone_reason
from crawlers.hooks import Hook, load_hook
from crawlers.items_file import ItemsFile
from crawlers.listing_end import HOLE, LOOP, hole_message, loop_message, same_page
from crawlers.pagination import PageRef, expected_page_count, next_pages, reads_page, template_page
from crawlers.places import Places
from crawlers.report import EMPTY_LISTING, ITEMS_FILE, PAGE_LIMIT, REPORT_FILE, CrawlReport
from crawlers.revalidate import Revalidator, Unchanged
from crawlers.sources import Source, load_source
from crawlers.spiders.direct import DirectDetails
from crawlers.spiders.problems import PageProblems
from crawlers.spiders.rendered import abandon, render_meta, settle
from crawlers.urls import is_fetchable

__all__ = ["Hook", "ListingSpider", "load_hook"]

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
        if self.source.hook:
            load_hook(self.source.hook)  # a hook that cannot load fails the crawl at once, not on each page
        self.report = CrawlReport(self.source.id, run_id, kind=kind, started=_now())
        self.policy = FetchPolicy.for_source(self.source)
        self.capture: WarcCapture | None = None
        self.problems = PageProblems(self.source, self.report, self.logger)
        self.rules = rules_digest(self.source)
        self.listing_rules = rules_digest(self.source, listing=True)  # a detail rule edit leaves listings alone
        self.items_file: ItemsFile | None = None  # the run's items.jsonl, written here (crawlers.items_file)
        self.listing_urls: set[str] = set()  # every listing page asked for (``crawlers.listing_end``)
        self.details: DirectDetails | None = None  # detail pages fetched past the scheduler (spiders.direct)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ListingSpider:
        if not args and "source" not in kwargs:  # `scrapy crawl listing` without -a source=…: say so, no traceback
            sys.stderr.write("listing spider: say which source to crawl: scrapy crawl listing -a source=PATH.yaml "
                             "(a source file, e.g. crawlers/demo/sources/mofcom.yaml)\n")
            sys.stderr.flush()
            os._exit(2)
        spider = super().from_crawler(crawler, *args, **kwargs)
        run_dir = crawler.settings.get("LISTWATCH_RUN_DIR")
        if run_dir:
            spider.items_file = ItemsFile(Path(run_dir) / ITEMS_FILE)
        crawler.signals.connect(spider._closed, signal=signals.spider_closed)
        crawler.signals.connect(spider._close_probes, signal=signals.spider_closed)
        crawler.signals.connect(spider.callback_error, signal=signals.spider_error)
        return spider

    def callback_error(self, failure: Failure, response: Response, spider: Spider) -> None:
        """A bug or a hook failing on a page: the page counts as failed, so the crawl is incomplete."""
        role = response.meta.get("role", "listing") if response.request is not None else "listing"
        self.report.problem(response.url, role, "extraction-error",
                            f"extraction failed on this page: {type(failure.value).__name__}: {failure.value}")
        if role == "listing":
            self.report.pagination_finished = False

    async def start(self) -> AsyncIterator[Request]:
        self.capture = self.crawler.get_extension(WarcCapture)
        if self.capture is not None and self.capture.dedup is not None:  # unchanged pages then find them waiting
            pages = None if self.kind == "full" else self.source.start_urls  # a quick check: its first pages only
            self.capture.dedup.read_ahead(self.capture.source_id, pages)
        places = Places(self.crawler)
        self.details = DirectDetails(self, self.crawler, places,
                                     Revalidator.for_crawl(self.crawler, self.capture, self.policy, places, self.kind))
        for url in self.source.start_urls:
            yield self._listing(url, 1, url)
        for key, url in self.recheck:
            # Known programmes missing from the listing: is their detail page still there?
            yield Request(url, callback=self.parse_recheck, errback=self.failed, cb_kwargs={"key": key},
                          meta={"role": "recheck"}, dont_filter=True)

    # -- requests ------------------------------------------------------------------------------

    def _listing(self, url: str, number: int, start_url: str) -> Request:
        request = self._request(url, "listing", self.parse_listing, self.source.render.mode == "browser",
                                number=number, start_url=start_url)
        self.listing_urls.add(same_page(url))
        if not self.source.hook:  # a hook is code the rules digest does not name: its pages are read again
            request.meta["listwatch_rules"] = self.listing_rules  # an unchanged listing may reuse what they gave
            # Read again only when its pagination reads the page itself (a next link, a page count).
            request.meta["listwatch_page_needed"] = reads_page(self.source.pagination, number)
        return request

    def _request(self, url: str, role: str, callback: Callable[..., Any], render: bool,
                 **cb_kwargs: Any) -> Request:
        meta: dict[str, Any] = {"role": role}
        if render:
            meta.update(render_meta(self.source, url, role, self.capture, self.policy))
        return Request(url, callback=callback, errback=self.failed, cb_kwargs=cb_kwargs, meta=meta,
                       dont_filter=role == "listing")

    # -- callbacks -----------------------------------------------------------------------------

    async def parse_listing(self, response: Response, number: int, start_url: str) -> AsyncIterator[Any]:
        record = await self._settle(response)
        reused = response.meta.get("listwatch_reused")
        result = self._reused_listing(response, reused[1]) if reused \
            else self._extract(response, "listing", self._decoded(response))
        if not self.problems.usable(response, result, record):
            self.report.pagination_finished = False
            return
        doc = result.doc
        rules = self.source.pagination
        problem = listing_problem(rules, number=number, matched=result.found, keyless=result.keyless,
                                  end_matched=not result.found and end_matches(rules, doc, response.url))
        hole = response.meta.get("listwatch_hole")
        if hole and self._listing_ended(response, problem):
            return
        if hole:
            self.report.problem(hole, "listing", HOLE, hole_message(hole, number - 1, response.url))
            self.report.pagination_finished = False
        if problem:  # a 200 without the list (busy/maintenance page): a failed page, never "seen"
            if not response.meta.get("listwatch_body_problem"):  # a corrupt body is already this page's failure
                self.report.problem(response.url, "listing", NO_ITEMS, problem)
            self.report.pagination_finished = False
            self.logger.warning("listing page %s: %s", response.url, problem)
            return
        self.report.pages_ok["listing"] += 1
        if number == 1 and not result.found:
            self.report.warn(response.url, "listing", EMPTY_LISTING, "the listing shows that it is empty "
                             "(pagination.end matched its first page): every programme it held is gone", record=record)
        if number == 1:
            self.report.listing_pages_expected = expected_page_count(self.source.pagination, doc, response.url)
        items = [self._item(entry, response.url, number, record) for entry in result.items]
        if self.capture is not None and reused:
            if reused[0] is not None:  # archived with another capture than the revisit's original: point at it
                self.capture.pointer_metadata(response.url, record, {"role": "listing", "page": number}, reused[0])
        elif self.capture is not None:
            self.capture.page_metadata(response.url, record, {
                "role": "listing", "page": number, "outlinks": outlinks(doc, response.url),
                "items": [{k: i[k] for k in ("key", "position", "fields")} for i in items],
                "decoding": result.decoding, "problems": result.problems, "rules": self.listing_rules,
            }, **self._moment(response))
        following = next_pages(self.source.pagination, start_url=start_url, url=response.url,
                               number=number, doc=doc, item_count=result.found)
        if rules.kind == "next_link":
            following = self._unlooped(list(following), response.url, number, start_url)
        if number >= self.source.pagination.max_pages and result.found and self.source.pagination.kind != "none":
            self.report.pagination_finished = False  # stopped by the page limit, more may exist
            self.report.warn(response.url, "listing", PAGE_LIMIT,
                             f"stopped at pagination.max_pages ({number}) with the listing still going: the crawl is "
                             "incomplete, so nothing is declared removed (raise pagination.max_pages if the "
                             "listing really is longer; a listing whose next page never ends is a trap)")
        if self.kind == "quick":
            items, following = self._quick(items, following, number)
        for page in following:
            yield self._listing(page.url, page.number, start_url)
        direct: list[Request] = []
        for item in items:
            detail = self.source.detail
            link = item["fields"].get(detail.link) if detail else None
            if detail and is_fetchable(link):
                request = self._request(link, "detail", self.parse_detail,
                                        detail.render and self.source.render.mode == "browser", item=item)
                request.meta["listwatch_rules"] = self.rules  # an unchanged page may reuse what these rules gave
                if self.details is not None and self.details.takes(request):
                    direct.append(request)
                else:
                    yield request
            else:
                self.report.items += 1
                if self._handed_over(item):
                    yield item
        if direct:
            assert self.details is not None
            async for out in self.details.fetch(direct, response):
                yield out

    def _quick(self, items: list[dict[str, Any]], following: Iterable[Any],
               number: int) -> tuple[list[dict[str, Any]], list[Any]]:
        """A quick check keeps only new programmes and stops paging at a page without any."""
        known = self.known([i["key"] for i in items]) if self.known else set()
        new = [i for i in items if i["key"] not in known]
        pages = [p for p in following if p.number <= self.source.schedule.quick_pages] if new else []
        self.report.pagination_finished = False  # by design: a quick check never sees the whole listing
        return new, pages

    async def parse_detail(self, response: Response, item: dict[str, Any]) -> AsyncIterator[Any]:
        record = await self._settle(response)
        if "listwatch_reused" in response.meta:
            for out in self._reused_detail(response.url, item, record, *response.meta["listwatch_reused"]):
                yield out
            return
        decoded = self._decoded(response)
        gone = self._gone(response, decoded.text)
        item["detail"] = {"url": response.url, "status": response.status, "record": record, "gone": gone}
        if gone is not None:
            self.report.pages_failed["detail"] += 1
            self.report.detail_gone += 1
        else:
            result = self._extract(response, "detail", decoded)
            if self.problems.usable(response, result, record):
                self.problems.count_misses(result.fields)
                item["fields"].update(result.fields)  # the page text stays in its capture (detail.record)
                self.report.pages_ok["detail"] += 1
                item["attachments"] = result.attachments
                if self.capture is not None:
                    self.capture.page_metadata(response.url, record, {
                        "role": "detail", "key": item["key"], "fields": result.fields,
                        "attachments": result.attachments, "decoding": result.decoding,
                        "problems": result.problems, "rules": self.rules}, **self._moment(response))
                for attachment in result.attachments:
                    yield self._attachment(attachment["url"])
        self.report.items += 1
        if self._handed_over(item):
            yield item

    def unchanged_detail(self, url: str, item: dict[str, Any], unchanged: Unchanged) -> Iterator[Any]:
        """A detail page :mod:`crawlers.revalidate` found not modified (its revisit archived)."""
        return self._reused_detail(url, item, unchanged.record, unchanged.same_as, unchanged.data)

    def _reused_detail(self, url: str, item: dict[str, Any], record: str | None, same_as: str | None,
                       data: dict[str, Any]) -> Iterator[Any]:
        """An unchanged detail page (304) whose last extraction, by the same rules, is archived: take it. No
        metadata record when that extraction is the one archived with the capture the revisit refers to."""
        item["detail"] = {"url": url, "status": 200, "record": record, "gone": None}  # the page stands
        fields = data.get("fields") or {}
        self.problems.count_misses(fields)
        item["fields"].update(fields)
        attachments = list(data.get("attachments") or [])
        item["attachments"] = attachments
        self.report.pages_ok["detail"] += 1
        if self.capture is not None and same_as is not None:
            self.capture.pointer_metadata(url, record, {"role": "detail", "key": item["key"]}, same_as)
        for attachment in attachments:
            yield self._attachment(attachment["url"])
        self.report.items += 1
        if self._handed_over(item):
            yield item

    async def parse_recheck(self, response: Response, key: str) -> AsyncIterator[dict[str, Any]]:
        record = await self._settle(response)
        self.report.pages_ok["recheck"] += 1
        recheck = {"source": self.source.id, "key": key, "recheck": True,
                   "detail": {"url": response.url, "status": response.status, "record": record,
                              "gone": self._gone(response, self._text(response))}}
        if self._handed_over(recheck):
            yield recheck

    def parse_attachment(self, response: Response) -> None:
        self.report.pages_ok["attachment"] += 1

    async def failed(self, failure: Failure) -> AsyncIterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        role = request.meta.get("role", "listing")
        record = request.meta.get("warc_record_id")  # plain HTTP: the capture middleware's response record
        page = request.meta.get("playwright_page")
        if page is not None:  # keep what the page fetched (evidence) before reporting it
            capture = request.meta.get("listwatch_page_capture")
            record = await abandon(page, capture, self.source.render.screenshot) or record
        kind, message = describe_failure(failure)
        if role == "listing" and self._is_end_of_template(request, kind):
            if self.kind != "quick" and not request.meta.get("listwatch_hole"):  # a hole, or the end?
                number, start_url = request.cb_kwargs["number"] + 1, request.cb_kwargs["start_url"]
                after = self._listing(template_page(self.source.pagination, start_url, number), number, start_url)
                after.meta["listwatch_hole"] = request.url
                yield after
            return
        response = getattr(failure.value, "response", None)
        status = response.status if response is not None else None
        gone = f"http-{status}" if status in (404, 410) and role != "listing" else None
        if response is not None and self.problems.challenge(response, role, self._text(response), record):
            kind = "challenge"
        elif gone is None:
            self.report.problem(request.url, role, kind, message, record=record)
        if gone:  # a programme's page that is gone is news, yet counted: 73 gone of 74 is a broken link rule
            self.logger.info("%s page %s: %s", role, request.url, message)
            if role == "detail":
                self.report.pages_failed["detail"] += 1
                self.report.detail_gone += 1
        else:
            self.logger.warning("%s page %s: %s", role, request.url, message)
        if role == "listing":
            self.report.pagination_finished = False
        # ``record``: the failed exchange itself (a 404's response record is the evidence of a removal)
        failure_detail = {"url": request.url, "status": status, "error": kind, "message": message, "gone": gone,
                          "record": record}
        if role == "detail":
            item = request.cb_kwargs["item"]
            item["detail"] = failure_detail
            self.report.items += 1
            if self._handed_over(item):
                yield item
        elif role == "recheck":
            recheck = {"source": self.source.id, "key": request.cb_kwargs["key"], "recheck": True,
                       "detail": failure_detail}
            if self._handed_over(recheck):
                yield recheck

    # -- helpers -------------------------------------------------------------------------------

    def _handed_over(self, item: dict[str, Any]) -> bool:
        """Write an item to the run's ``items.jsonl`` here; True when there is none and Scrapy takes the item."""
        if self.items_file is None:
            return True
        self.items_file.write(item)
        return False

    async def _settle(self, response: Response) -> str | None:
        """The page's record id, once a rendered page's capture is finished and the page closed."""
        return await settle(response, self.source.render.screenshot)

    def _decoded(self, response: Response) -> Decoded:
        """The page as text, decoded once the way every step here needs it (never trusting a lying charset)."""
        rendered = bool(response.meta.get("playwright"))
        return decode(self._body(response), scrapy_headers(response.headers), self.source, rendered,
                      utf8_text=None if rendered else scrapy_utf8_text(response))

    @staticmethod
    def _body(response: Response) -> bytes:
        return str(response.text).encode("utf-8") if response.meta.get("playwright") else response.body

    def _text(self, response: Response) -> str:
        return self._decoded(response).text

    def _extract(self, response: Response, role: str, decoded: Decoded | None = None) -> PageResult:
        """The one extraction path (``crawlers.extractor``), fed exactly what the archive keeps."""
        return extract_page(self.source, response.url, role, scrapy_headers(response.headers), self._body(response),
                            status=response.status, rendered=bool(response.meta.get("playwright")),
                            captured_at=self._dated(response), decoded=decoded)

    def _reused_listing(self, response: Response, data: dict[str, Any]) -> PageResult:
        """An unchanged listing page (304) whose items, by the same rules, are archived: those items, and the
        page parsed only when its pagination reads it (``doc``; else the 304 itself came, with no payload)."""
        result = PageResult("listing", items=list(data["items"]), decoding=dict(data.get("decoding") or {}))
        result.found = len(result.items)  # reused only when it had items (all keyed: no problems)
        if response.meta.get("listwatch_page_needed"):
            result.doc = listing_document(self.source, scrapy_headers(response.headers), self._decoded(response))
        return result

    @staticmethod
    def _dated(response: Response) -> datetime:
        """What relative and year-less dates are resolved against: the capture's date, and for an unchanged page
        (a revisit) the date of the capture it repeats: the same page says the same thing, so "12 Jan" keeps
        the year it was given when first read, even when the page is seen again after New Year (and
        ``programs reprocess`` resolves revisits the same way)."""
        original = response.meta.get("listwatch_original")
        captured = original.warc_date if original is not None else response.meta.get("warc_date")
        return datetime.fromisoformat(captured.replace("Z", "+00:00")) if captured else datetime.now(UTC)

    @staticmethod
    def _moment(response: Response) -> dict[str, Any]:
        """The page's capture date and, for an unchanged page (a revisit), the capture it repeats."""
        return {"date": response.meta.get("warc_date"), "original": response.meta.get("listwatch_original")}

    def _gone(self, response: Response, text: str) -> str | None:
        redirects = response.meta.get("redirect_urls") or [response.url]
        return gone_reason(response.status, redirects[0], response.url, text, self.source.start_urls)

    def _item(self, entry: dict[str, Any], url: str, number: int, record: str | None) -> dict[str, Any]:
        return {"source": self.source.id, "key": entry["key"], "fields": entry["fields"], "listing_url": url,
                "listing_page": number, "position": entry["position"], "listing_record": record}

    def _attachment(self, url: str) -> Request:
        limit = self.source.detail.attachments.max_bytes  # type: ignore[union-attr]
        return Request(url, callback=self.parse_attachment, errback=self.failed,
                       meta={"role": "attachment", "download_maxsize": limit, "download_warnsize": 0})

    def _listing_ended(self, response: Response, problem: str | None) -> bool:
        """The page after a missing one is empty too, or redirects to a listing page already asked for."""
        back = bool(response.meta.get("redirect_urls")) and same_page(response.url) in self.listing_urls
        return bool(problem) or back

    def _unlooped(self, following: list[PageRef], url: str, number: int, start_url: str) -> list[PageRef]:
        """The next link, unless it leads back to a listing page already asked for (``crawlers.listing_end``)."""
        fresh = [p for p in following if same_page(p.url) not in self.listing_urls]
        for page in following:
            if page in fresh:
                continue
            if same_page(page.url) == same_page(start_url):
                self.report.warn(url, "listing", LOOP, loop_message(number, page.url, to_start=True))
            else:
                self.report.problem(url, "listing", LOOP, loop_message(number, page.url, to_start=False))
                self.report.pagination_finished = False
        return fresh

    def _is_end_of_template(self, request: Request, kind: str) -> bool:
        """A missing page after the first ends template paging without a total: not an error."""
        rules = self.source.pagination
        return (kind == "http-404" and rules.kind == "template" and rules.total is None
                and request.cb_kwargs.get("number", 1) > 1)

    async def _close_probes(self) -> None:
        if self.details is not None and self.details.revalidator is not None:
            await self.details.revalidator.close()

    def _closed(self, spider: Spider, reason: str) -> None:
        report = self.report
        self.problems.report_misses()
        report.finished = _now()
        report.stop_reason = reason
        if self.details is not None and self.details.revalidator is not None:
            report.revalidated = self.details.revalidator.unchanged
        if self.items_file is not None:
            self.items_file.close()
            self.crawler.stats.set_value("item_scraped_count", self.items_file.count)  # as Scrapy counted them
        if self.capture is not None:
            files = self.capture.close()   # a write that fails now (disk full) is in write_error too
            report.warc_closed(files, self.capture.writer.bytes_written, self.capture.write_error)
        run_dir = self.settings.get("LISTWATCH_RUN_DIR")
        if run_dir:
            report.items_path = str(Path(run_dir) / ITEMS_FILE)
            report.save(Path(run_dir) / REPORT_FILE)


def rules_digest(source: Source, *, listing: bool = False) -> str:
    """Names the extraction rules: the source without its name, politeness, limits, schedule, fetch and
    headers sections (no rules there, and headers may hold secrets), and for listing pages without its
    detail section. An earlier extraction is reused only under the same rules, so editing a source takes
    effect on its next crawl, unchanged pages included."""
    exclude = {"name", "politeness", "limits", "schedule", "headers", "fetch", *(("detail",) if listing else ())}
    rules = source.model_dump(mode="json", exclude=exclude)
    return hashlib.sha256(json.dumps(rules, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
