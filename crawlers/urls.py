"""Link resolution that never raises: one malformed href on a page must cost only that link.

``urllib.parse`` raises ``ValueError`` on hrefs such as ``http://[x`` (bad IPv6 literal) or
``http://a:99999/`` (port out of range); raised inside extraction, that discarded every item on the page
on every crawl. Here such an href resolves to None and the caller reports it as a problem.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TypeGuard
from urllib.parse import urljoin, urlsplit

_SPACE_OR_CONTROL = frozenset(chr(c) for c in range(0x21)) | {"\x7f"}


def resolve(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base``; None when the result cannot be parsed as a URL.

    Non-http(s) results (``mailto:``…) are returned as they are; callers that fetch check the scheme.
    """
    try:
        url = urljoin(base, href.strip())
    except ValueError:
        return None
    return url if parses(url) else None


@lru_cache(maxsize=4096)   # asked of an item's link three times (resolving, keying, fetching): parsed once
def parses(url: str) -> bool:
    """Whether ``url`` splits cleanly (port, IPv6 literal, an http(s) host without spaces or controls)."""
    try:
        parts = urlsplit(url)
        _ = parts.port        # validates the port (range, digits)
        _ = parts.hostname    # validates a bracketed IPv6 literal
    except ValueError:
        return False
    return parts.scheme not in ("http", "https") or (bool(parts.hostname) and not _SPACE_OR_CONTROL & set(parts.netloc))


def is_fetchable(url: object) -> TypeGuard[str]:
    """An absolute http(s) URL that parses (what a detail link or attachment must be to be requested)."""
    return isinstance(url, str) and url.startswith(("http://", "https://")) and parses(url)
