"""Capture of browser-rendered pages (scrapy-playwright): the navigation response and every
subresource as WARC ``response`` records, the rendered DOM at ``urn:dom:<url>`` and a full-page
screenshot at ``urn:screenshot:<url>``, both as ``resource`` records.

The rendered DOM is never written as a ``response`` paired with the navigation headers: Playwright
hands us decoded bodies, so transfer headers are dropped and the real length written.

Waiting for a source's ``wait_for`` selector goes through :func:`wait_for_content`, which first looks at the
navigation response: an error status or a challenge page is handed to the spider at once (reported as
blocked, with its capture as evidence) instead of being waited on until it times out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from archive.records import DECODED_BODY_DROP, Headers, clean_headers
from crawlers.capture import WarcCapture
from crawlers.challenge import detect_challenge
from crawlers.fetch_policy import FetchPolicy

logger = logging.getLogger(__name__)
BODY_GRACE = 5.0  # seconds a ready page's responses get to deliver their bodies before the page is captured


def _pairs(array: list[dict[str, str]]) -> Headers:
    return [(h["name"], h["value"]) for h in array]


def _is_navigation(response: Any) -> bool:
    """The top frame's own document (not a subresource, not an iframe, not a redirect hop)."""
    return bool(response.request.is_navigation_request() and response.frame.parent_frame is None
                and not 300 <= response.status < 400)


class Navigation:
    """The top frame's latest navigation response, as the page's ``response`` events report it."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}

    def on_response(self, response: Any) -> None:
        if _is_navigation(response):
            self.status, self.headers = response.status, dict(response.headers)


async def wait_for_content(page: Any, navigation: Navigation, selector: str, timeout_ms: float) -> None:
    """A ``PageMethod`` callable: wait for ``selector`` unless the navigation answered an error status or a
    challenge page, which would only time out (and be misreported as a missing selector)."""
    if navigation.status is not None and navigation.status >= 400:
        return
    if detect_challenge(navigation.status or 200, navigation.headers, await page.content()):
        return
    await page.wait_for_selector(selector, state="attached", timeout=timeout_ms)


class PageCapture:
    """Attach ``on_response`` to a page's ``response`` event; call ``finish``, then ``close``."""

    def __init__(self, capture: WarcCapture, url: str, policy: FetchPolicy | None = None) -> None:
        self.capture = capture
        self.url = url
        self.policy = policy  # a response from an address the fetch policy refuses is never archived
        self.navigation = Navigation()
        self.navigation_id: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def on_response(self, response: Any) -> None:
        self.navigation.on_response(response)
        self._tasks.append(asyncio.ensure_future(self._record(response)))

    async def _record(self, response: Any) -> None:
        url = response.url
        if not url.startswith(("http://", "https://")):
            return
        request = response.request
        try:  # the headers first: they are there now, the body may only come when the page is closed
            request_headers = _pairs(await request.headers_array())
            response_headers = clean_headers(_pairs(await response.headers_array()), DECODED_BODY_DROP)
            address = await response.server_addr()
        except Exception as exc:
            logger.warning("could not read the exchange for %s: %s", url, exc)
            return
        if self._refused(url, address["ipAddress"] if address else None):
            return
        try:
            body = await response.body() if not 300 <= response.status < 400 else b""
        except Exception as exc:  # the page navigated away, was closed, or the body was evicted
            logger.debug("no body for %s: %s", url, exc)
            body = b""
        response_headers.append(("Content-Length", str(len(body))))
        record = self.capture.exchange(
            url=url,
            method=request.method,
            request_headers=request_headers,
            request_body=request.post_data_buffer or b"",
            status=response.status,
            reason=response.status_text,
            response_headers=response_headers,
            body=body,
            ip_address=address["ipAddress"] if address else None,
        )
        if _is_navigation(response):  # whatever its status: a 404 or a challenge page is evidence too
            self.navigation_id = record

    def _refused(self, url: str, address: str | None) -> bool:
        if self.policy is None:
            return False
        reason = self.policy.refuse_url(url)
        if reason is None and address:
            try:
                reason = self.policy.refuse_address(url, ipaddress.ip_address(address.split("%", 1)[0]))
            except ValueError:
                reason = None
        if reason is not None:
            logger.warning("not archiving %s: %s", url, reason)
        return reason is not None

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for every response seen so far to be written (at most ``timeout`` seconds: those left keep going)."""
        while self._tasks:
            tasks, self._tasks = self._tasks, []
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                self._tasks.extend(pending)
                return

    async def finish(self, page: Any, *, screenshot: bool) -> str | None:
        """Write the DOM and screenshot; returns the navigation response's record id.

        A body the page fetched but never read (``fetch()`` without ``.json()``, a service worker's pass-through)
        only settles when the page closes: such exchanges are written by :meth:`close`, not waited for here.
        """
        await self.drain(BODY_GRACE)
        builder = self.capture.builder
        try:
            dom = (await page.content()).encode("utf-8")
            records = [builder.resource(f"urn:dom:{self.url}", "text/html; charset=utf-8", dom,
                                        refers_to=self.navigation_id)]
            if screenshot:
                png = await page.screenshot(full_page=True, type="png")
                records.append(builder.resource(f"urn:screenshot:{self.url}", "image/png", png,
                                                refers_to=self.navigation_id))
            self.capture.write(*records)
        except Exception as exc:
            if page.is_closed():
                logger.debug("page %s closed before its DOM could be captured", self.url)
            else:
                logger.warning("could not capture the rendered page %s: %s", self.url, exc)
        await self.drain(BODY_GRACE)
        return self.navigation_id

    async def close(self, page: Any) -> None:
        """Close the page, then write the exchanges whose bodies were still pending (they settle at close)."""
        await page.close()
        await self.drain()
