"""Failed requests described in words an operator understands."""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as net
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed

from crawlers.fetch_policy import REFUSED, FetchRefused


def describe_failure(failure: Failure) -> tuple[str, str]:
    """(kind, message) for a failed request: kinds are stable strings used in reports."""
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        return f"http-{status}", f"the server answered HTTP {status}"
    if isinstance(exc, net.DNSLookupError):
        return "dns", "the host name does not resolve"
    if isinstance(exc, net.ConnectionRefusedError):
        return "connection", "the server refused the connection"
    if isinstance(exc, net.TimeoutError | net.TCPTimedOutError):
        return "timeout", "no complete response before the download timeout"
    if isinstance(exc, FetchRefused):
        return REFUSED, f"refused by the fetch policy: {exc}"
    if isinstance(exc, IgnoreRequest):
        text = str(exc)
        if "robots.txt" in text:
            return "robots", "robots.txt forbids this URL"
        if "redirect" in text.lower():
            return "redirect-loop", f"too many redirects ({text})"
        if "DOWNLOAD_MAXSIZE" in text:  # Scrapy's decompression cap: a gzip bomb, or simply too large
            return "too-large", f"the response inflates past the size limit and was not kept ({text})"
        return "ignored", text or "request dropped by a crawl rule"
    if isinstance(exc, ResponseFailed):
        reasons = "; ".join(str(r.value) for r in exc.reasons) or "connection lost"
        return "connection", f"the response was cut off: {reasons}"
    text = (str(exc) or type(exc).__name__).strip().splitlines()[0]
    if "download max size" in text or "maxsize" in text.lower() or type(exc).__name__ == "CancelledError":
        return "too-large", f"the response exceeds the size limit and was not kept ({text})"
    if "Timeout" in type(exc).__name__:
        return "timeout", f"timed out: {text}"
    return "error", f"{type(exc).__name__}: {text}"
