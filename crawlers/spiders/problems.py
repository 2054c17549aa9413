"""What the listing spider reports about its pages: problems, challenge pages, detail rules that do not fit.

A page that gave nothing (a challenge page, an unparseable page) is a failed page of the crawl report; a page
that gave something with flaws (a charset conflict, an unreadable date, an empty field) is a warning. Detail
fields are also judged across the crawl: a field that matched nothing on most detail pages names a rule that
does not fit the site any more.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from scrapy.http import Response

from crawlers.challenge import detect_challenge
from crawlers.extractor import EMPTY_FIELD_MIN_ITEMS, PageResult
from crawlers.report import CrawlReport, Role
from crawlers.sources import Source

# The spider's logger (Scrapy wraps it in an adapter that names the spider).
Logger = logging.Logger | logging.LoggerAdapter[Any]


class PageProblems:
    """Reports into one crawl's ``report`` (and ``logger``) what is wrong with its pages."""

    def __init__(self, source: Source, report: CrawlReport, logger: Logger) -> None:
        self.source = source
        self.report = report
        self.logger = logger
        self.detail_misses: Counter[str] = Counter()  # detail field → detail pages where it matched nothing
        self.details_read = 0

    def usable(self, response: Response, result: PageResult, record: str | None) -> bool:
        """Report a page's problems; False when it gave nothing (challenge, unparseable)."""
        role = result.role
        for message in result.problems:
            kind = message.partition(":")[0] if message.startswith(("charset:", "charset-conflict:", "date:")) \
                else ("empty-field" if message.startswith("field ") else "extraction")
            self.report.warn(response.url, role, kind, message)
        if result.decoding.get("conflict"):
            self.logger.info("%s: %s", response.url, result.decoding["conflict"])
        if result.challenge is not None:
            self._challenge(response, role, result.challenge, record)
            return False
        if response.meta.get("listwatch_body_problem"):
            self.report.problem(response.url, role, "corrupt-body", response.meta["listwatch_body_problem"])
        if result.problem is not None:
            self.report.problem(response.url, role, "parse", result.problem)
            return False
        return True

    def challenge(self, response: Response, role: Role, text: str, record: str | None) -> bool:
        """Report a failed request's page as a challenge page when it is one (evidence of blocking)."""
        headers = {k.decode(): v[0].decode("latin-1") for k, v in response.headers.items() if v}
        name = detect_challenge(response.status, headers, text)
        if name is None:
            return False
        self._challenge(response, role, name, record)
        return True

    def _challenge(self, response: Response, role: Role, name: str, record: str | None) -> None:
        message = f"{name} challenge page (HTTP {response.status}) archived as evidence, not parsed"
        self.report.problem(response.url, role, "challenge", message, record=record)
        self.logger.warning("%s: %s", response.url, message)

    def count_misses(self, fields: dict[str, Any]) -> None:
        """Count the detail fields (and table labels) one detail page's extraction left empty."""
        detail = self.source.detail
        assert detail is not None
        names = [*detail.fields, *(detail.table.labels.values() if detail.table else [])]
        self.details_read += 1
        self.detail_misses.update(name for name in names if fields.get(name) in (None, "", []))

    def report_misses(self) -> None:
        """A detail field (or table label) that matched nothing on most detail pages: a rule that does not fit."""
        if self.details_read < EMPTY_FIELD_MIN_ITEMS:
            return
        for name, missing in sorted(self.detail_misses.items()):
            if missing * 2 > self.details_read:
                self.report.warn(self.source.start_urls[0], "detail", "empty-field",
                                 f"detail field {name!r} matched nothing on {missing} of {self.details_read} "
                                 "detail pages")
