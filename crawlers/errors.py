"""Failed requests described in words an operator understands.

Scrapy (2.13+) wraps Twisted's download errors in its own exceptions (``CannotResolveHostError``,
``DownloadFailedError``, ``ResponseDataLossError``…); both forms are recognised, so a report says "the host
name does not resolve", not ``CannotResolveHostError: DNS lookup failed: …``.
"""

from __future__ import annotations

from scrapy import exceptions as scrapy_errors
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as net
from twisted.python.failure import Failure
from twisted.web._newclient import ParseError, ResponseFailed

from crawlers.fetch_policy import REFUSED, FetchRefused


def describe_failure(failure: Failure) -> tuple[str, str]:
    """(kind, message) for a failed request: kinds are stable strings used in reports."""
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        location = (exc.response.headers.get("Location") or b"").decode("latin-1")
        scheme = location.partition(":")[0].strip().lower() if ":" in location else ""
        if 300 <= status < 400 and scheme.isalpha() and scheme not in ("http", "https"):
            # Scrapy follows only http(s) redirects: one to file:, ftp: or data: stays a 3xx answer
            return f"http-{status}", (f"the server answered HTTP {status}, a redirect to a {scheme[:20]}: URL, "
                                      "which is never followed (only http(s) is fetched)")
        return f"http-{status}", f"the server answered HTTP {status}"
    if isinstance(exc, net.DNSLookupError | scrapy_errors.CannotResolveHostError):
        return "dns", "the host name does not resolve"
    if isinstance(exc, net.ConnectionRefusedError | scrapy_errors.DownloadConnectionRefusedError):
        return "connection", "the server refused the connection"
    if isinstance(exc, net.TimeoutError | net.TCPTimedOutError | scrapy_errors.DownloadTimeoutError):
        return "timeout", "no complete response before the download timeout"
    if isinstance(exc, scrapy_errors.ResponseDataLossError):
        return "truncated", ("the connection closed before the whole response arrived (fewer bytes than its "
                             "Content-Length, or an unfinished chunked body): the part received is not used")
    if isinstance(exc, scrapy_errors.UnsupportedURLSchemeError):
        return REFUSED, f"not an http(s) URL, never fetched ({exc})"
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
    if isinstance(exc, ResponseFailed | scrapy_errors.DownloadFailedError):
        malformed = _malformed(exc)
        if malformed:   # e.g. two Content-Length headers that disagree: the body's length cannot be known
            return "malformed", f"the server's answer is not valid HTTP ({malformed}): none of it is used"
        return "connection", f"the response was cut off: {_reasons(exc)}"
    text = (str(exc) or type(exc).__name__).strip().splitlines()[0]
    if "download max size" in text or "maxsize" in text.lower() or type(exc).__name__ in ("CancelledError",
                                                                                      "DownloadCancelledError"):
        return "too-large", f"the response exceeds the size limit and was not kept ({text})"
    if "Timeout" in type(exc).__name__:
        return "timeout", f"timed out: {text}"
    return "error", f"{type(exc).__name__}: {text}"


def _malformed(exc: BaseException) -> str:
    """What Twisted found invalid in the response's status line or headers, or "" when it was not that."""
    failed = exc if isinstance(exc, ResponseFailed) else exc.__cause__
    bad = [r.value for r in getattr(failed, "reasons", None) or [] if isinstance(r.value, ParseError | ValueError)]
    return "; ".join(": ".join(map(_plain, b.args)) if isinstance(b, ParseError) else str(b) for b in bad)[:300]


def _plain(value: object) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _reasons(exc: BaseException) -> str:
    """Why Twisted gave up on a response, from the ``ResponseFailed`` itself or the one Scrapy wrapped."""
    failed = exc if isinstance(exc, ResponseFailed) else exc.__cause__
    reasons = getattr(failed, "reasons", None) or []
    return "; ".join(str(r.value) for r in reasons) or "the connection was lost"
