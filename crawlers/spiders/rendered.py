"""Browser-rendered pages of the listing spider (scrapy-playwright): the request's meta, and the page's end.

A rendered request carries a :class:`crawlers.browser.PageCapture` that archives what the page fetches; when
the spider is done with the page (parsed or failed) it finishes that capture (DOM, screenshot) before closing
the page, so a failed page keeps its evidence too.
"""

from __future__ import annotations

from typing import Any

from scrapy.http import Response
from scrapy_playwright.page import PageMethod

from crawlers.browser import Navigation, PageCapture, wait_for_content
from crawlers.capture import WarcCapture
from crawlers.fetch_policy import FetchPolicy
from crawlers.sources import Source


def render_meta(source: Source, url: str, role: str, capture: WarcCapture | None,
                policy: FetchPolicy) -> dict[str, Any]:
    """The Playwright meta of a request rendered in the browser, waiting for the role's ``wait_for``."""
    rules = source.render
    wait_for = rules.wait_for if role == "listing" else (source.detail.wait_for if source.detail else None)
    page_capture = PageCapture(capture, url, policy) if capture is not None else None
    navigation = page_capture.navigation if page_capture is not None else Navigation()
    methods = [PageMethod(wait_for_content, navigation, wait_for, rules.timeout * 1000)] if wait_for else []
    meta: dict[str, Any] = {
        "playwright": True,
        "playwright_include_page": True,
        "playwright_page_goto_kwargs": {"wait_until": rules.wait_until, "timeout": rules.timeout * 1000},
        "playwright_page_methods": methods,
        "playwright_page_event_handlers": {"response": (page_capture or navigation).on_response},
    }
    if page_capture is not None:
        meta["listwatch_page_capture"] = page_capture
    return meta


async def settle(response: Response, screenshot: bool) -> str | None:
    """Finish browser capture (DOM, screenshot) and close the page; returns the record id."""
    page = response.meta.get("playwright_page")
    if page is None:
        return response.meta.get("warc_record_id")
    return await abandon(page, response.meta.get("listwatch_page_capture"), screenshot)


async def abandon(page: Any, page_capture: PageCapture | None, screenshot: bool) -> str | None:
    """Keep what a rendered page fetched (evidence: DOM, screenshot), then close it; returns the navigation
    response's record id."""
    if page_capture is None:
        await page.close()
        return None
    try:
        return await page_capture.finish(page, screenshot=screenshot)
    finally:
        await page_capture.close(page)
