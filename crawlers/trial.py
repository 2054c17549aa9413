"""Try a source file: fetch its first listing page and the first few detail pages, archive nothing.

What ``listwatch sources test FILE`` shows before a source is scheduled: the items exactly as a crawl would
extract them (the same :func:`crawlers.extractor.extract_page`), and every problem met on the way (a charset
conflict, a partial date, a field that matched nothing, a detail page that failed). Pages are fetched one at
a time with the source's user agent, limits and fetch policy, without rendering (a ``render: browser`` source
is tried on its unrendered HTML, and the result says so).
"""

from __future__ import annotations

import asyncio
import http.client
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crawlers import settings as defaults
from crawlers.extractor import PageResult, extract_page
from crawlers.fetch_policy import FetchPolicy
from crawlers.sources import Source


@dataclass
class Trial:
    source_id: str
    url: str
    items: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pages: int = 0
    ok: bool = False


class _PolicyRedirects(urllib.request.HTTPRedirectHandler):
    """Every redirect hop is checked against the source's fetch policy, as the crawl checks it."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        refused = asyncio.run(self.policy.refuse_resolved(newurl))
        if refused is not None:
            raise urllib.error.URLError(f"redirect refused: {refused}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, source: Source) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body; an HTTP error is a status, not raised. The source's fetch policy
    (``crawlers.fetch_policy``) applies to the URL and every redirect. Bounded as a crawl's download is:
    ``limits.timeout`` for the whole answer (a server dripping a byte at a time cannot hold it open) and
    ``limits.max_response_bytes`` inflated. Raises ValueError (or OSError) saying what went wrong."""
    policy = FetchPolicy.for_source(source)
    refused = asyncio.run(policy.refuse_resolved(url))
    if refused is not None:
        raise ValueError(f"refused by the fetch policy: {refused}")
    request = urllib.request.Request(url, headers={
        "User-Agent": source.politeness.user_agent or defaults.USER_AGENT, "Accept-Encoding": "identity"})
    opener = urllib.request.build_opener(_PolicyRedirects(policy))
    deadline = time.monotonic() + source.limits.timeout
    try:
        with opener.open(request, timeout=source.limits.timeout) as response:
            return response.status, list(response.headers.items()), _body(response, source, deadline)
    except urllib.error.HTTPError as exc:
        return exc.code, list(exc.headers.items()), _body(exc, source, deadline)
    except urllib.error.URLError as exc:  # a refused redirect, DNS, connection: say why, not "<urlopen error …>"
        raise ValueError(str(exc.reason)) from None
    except http.client.HTTPException as exc:  # a malformed status line or header block
        raise ValueError(f"not a valid HTTP answer ({type(exc).__name__}: {exc})") from None


def _body(response: Any, source: Source, deadline: float) -> bytes:
    """The whole body within the deadline and the size limit, inflated if the server compressed it anyway."""
    limit, chunks, size = source.limits.max_response_bytes, [], 0
    try:
        while chunk := response.read1(1 << 16):
            size += len(chunk)
            if size > limit:
                raise ValueError(f"the answer is larger than limits.max_response_bytes ({limit:,} bytes): not used")
            if time.monotonic() > deadline:
                raise ValueError(f"the answer did not arrive within limits.timeout ({source.limits.timeout:g} s)")
            chunks.append(chunk)
    except http.client.IncompleteRead:  # an unfinished chunked body
        raise ValueError(f"the connection closed before the whole answer arrived (after {size:,} bytes): "
                         "not used") from None
    missing = getattr(response, "length", None)   # what a Content-Length still promised (read1 does not check)
    if missing:
        raise ValueError(f"the connection closed before the whole answer arrived ({size:,} of "
                         f"{size + missing:,} bytes): not used")
    body = b"".join(chunks)
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"the server compressed the answer with {encoding!r} though none was asked")
    inflater = zlib.decompressobj(47 if encoding != "deflate" else zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, limit + 1)   # bounded: a 1 MiB bomb stops at the limit
    except zlib.error as exc:
        raise ValueError(f"the {encoding} answer is corrupt ({exc})") from None
    if len(inflated) > limit:
        raise ValueError(f"the answer inflates past limits.max_response_bytes ({limit:,} bytes): not used")
    return inflated


def try_source(source: Source, details: int = 3) -> Trial:
    """The first listing page and up to ``details`` detail pages of ``source``."""
    url = source.start_urls[0]
    trial = Trial(source.id, url)
    if source.render.mode == "browser":
        trial.problems.append("render: browser — tried on the unrendered HTML (a crawl renders it)")
    listing = _page(source, url, "listing", trial)
    if listing is None or not listing.ok:
        return trial
    trial.ok = True
    trial.items = [{"key": i["key"], **i["fields"]} for i in listing.items]
    if not trial.items:
        trial.problems.append(f"{url}: no items (the items selector matched {listing.found} nodes)")
    detail = source.detail
    fetched: list[dict[str, Any]] = []
    for item in trial.items[:details] if detail is not None else []:
        assert detail is not None
        link = item.get(detail.link)
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            trial.problems.append(f"item {item['key']}: no detail link in field {detail.link!r}")
            continue
        result = _page(source, link, "detail", trial)
        if result is not None and result.ok:
            item.update(result.fields)
            if result.attachments:
                item["attachments"] = ", ".join(f"{a['name']} <{a['url']}>" for a in result.attachments)
            fetched.append(result.fields)
    for name in detail.fields if detail is not None and fetched else []:
        missing = sum(1 for fields in fetched if fields.get(name) in (None, "", []))
        if missing:
            trial.problems.append(f"detail field {name!r} matched nothing on {missing} of {len(fetched)} detail pages")
    return trial


def _page(source: Source, url: str, role: str, trial: Trial) -> PageResult | None:
    try:
        status, headers, body = fetch(url, source)
    except (OSError, ValueError) as exc:
        trial.problems.append(f"{role} {url}: cannot fetch: {exc}")
        return None
    trial.pages += 1
    result = extract_page(source, url, role, headers, body, status=status, captured_at=datetime.now(UTC))
    trial.problems += [f"{role} {url}: {p}" for p in result.problems]
    if result.challenge:
        trial.problems.append(f"{role} {url}: a {result.challenge} challenge page (HTTP {status}), not content")
    elif result.problem:
        trial.problems.append(f"{role} {url}: {result.problem}")
    return result
