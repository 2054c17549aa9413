"""Unchanged detail pages confirmed by conditional GETs outside Scrapy (crawlers.revalidate), and detail pages
fetched from the listing callback (crawlers.spiders.direct): same requests, same records, same limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawlers.fetch_policy import FetchPolicy
from crawlers.revalidate import CHURN, PolicyResolver
from crawlers.sources import Source
from tests.archive_tools import warcio_check
from tests.conftest import Crawl, crawl_sources
from tests.hostile import HostileSite

DETAILS = 12
AGENT = "listwatch-revalidate-test/1.0 (+mailto:test@example.org)"


def build_site(site: HostileSite, robots: str = "User-agent: *\nDisallow: /private/\n") -> None:
    """A listing of 12 programmes (one linked twice), each detail page with an ETag; the listing sets a cookie."""
    rows = "".join(f'<li><a href="/detail/{n}.html">Programme {n}</a></li>' for n in range(1, DETAILS + 1))
    rows += '<li><a href="/detail/1.html">Programme 1</a></li>'   # the same programme listed twice
    site.page("/list.html", f'<html><body><ul class="list">{rows}</ul></body></html>',
              headers=[("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", "session=s3cr3t; Path=/")])
    for n in range(1, DETAILS + 1):
        detail(site, n, f"Organizer {n}")
    site.page("/robots.txt", robots, headers=[("Content-Type", "text/plain")])


def detail(site: HostileSite, n: int, organizer: str) -> None:
    site.page(f"/detail/{n}.html",
              f"<html><body><h1>Programme {n}</h1><p class='org'>{organizer}</p></body></html>",
              headers=[("Content-Type", "text/html; charset=utf-8"), ("ETag", f'"{n}-{organizer}"')])


def write_source(tmp_path: Path, site: HostileSite, extra: str = "") -> Path:
    path = tmp_path / "reval.yaml"
    path.write_text(
        f"id: reval\nname: Revalidation\nstart_urls: ['{site.url}/list.html']\n"
        f"politeness: {{delay: 0, concurrency: 2, user_agent: '{AGENT}'}}\n"
        "headers: {X-Api-Key: 'key-that-must-not-be-archived'}\n"
        f"limits: {{retries: 0, timeout: 5{extra}}}\n"
        "items:\n  selector: 'ul.list > li'\n  key: url\n  fields:\n"
        "    url: {css: 'a::attr(href)', type: url}\n    title: 'a'\n"
        "detail:\n  link: url\n  fields:\n    organizer: 'p.org::text'\n", encoding="utf-8")
    return path


def crawl(source: Path, tmp_path: Path) -> Crawl:
    return crawl_sources([source], data_dir=tmp_path / "data")["reval"]


def records(warcs: list[Path], kind: str) -> dict[str, dict[str, str]]:
    """Target URI → WARC headers plus HTTP headers (lower-case) of each record of ``kind``."""
    found = {}
    for path in warcs:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == kind:
                    http = {k.lower(): v for k, v in record.http_headers.headers} if record.http_headers else {}
                    found[record.rec_headers.get_header("WARC-Target-URI")] = \
                        {**dict(record.rec_headers.headers), **http}
    return found


def details_of(site: HostileSite) -> list[dict[str, str]]:
    return [r for r in site.requests if r["path"].startswith("/detail/")]


def test_unchanged_details_are_confirmed_with_the_same_requests_and_records(tmp_path: Path) -> None:
    with HostileSite() as site:
        build_site(site)
        site.delay = 0.02   # requests overlap: the politeness limit is tested, not granted by speed
        source = write_source(tmp_path, site)
        first = crawl(source, tmp_path)
        sent_first = details_of(site)
        site.requests.clear()
        second = crawl(source, tmp_path)
        sent_second = details_of(site)

    assert first.report["complete"] and second.report["complete"], second.report["problems"]
    assert first.report["revalidated"] == 0
    assert second.report["revalidated"] == DETAILS   # every detail page confirmed outside Scrapy
    assert {i["key"]: i["fields"] for i in second.items} == {i["key"]: i["fields"] for i in first.items}
    assert len(second.items) == DETAILS and second.items[0]["fields"]["organizer"].startswith("Organizer")

    # One request per detail page (the duplicate link fetched once), at most politeness.concurrency at once.
    assert len(sent_first) == len(sent_second) == DETAILS
    assert site.most_at_once <= 2
    # The same headers as Scrapy's own requests, plus the validators: user agent, source header, cookie, Referer.
    for request in sent_second:
        assert request["user-agent"] == AGENT
        assert request["x-api-key"] == "key-that-must-not-be-archived"
        assert request["cookie"] == "session=s3cr3t"
        assert request["referer"] == f"{site.url}/list.html"
        assert request["if-none-match"].startswith('"')
    assert {k for k in sent_second[0] if k != "if-none-match"} == set(sent_first[0])

    # Archived as a server-not-modified revisit and its request, secrets redacted; warcio accepts the WARCs.
    revisits, requests = records(second.warcs, "revisit"), records(second.warcs, "request")
    for n in range(1, DETAILS + 1):
        url = f"{site.url}/detail/{n}.html"
        assert revisits[url]["WARC-Profile"].endswith("/server-not-modified")
        assert revisits[url]["WARC-Refers-To-Target-URI"] == url
        assert requests[url]["WARC-Concurrent-To"] == revisits[url]["WARC-Record-ID"]
        assert requests[url]["x-api-key"] == "[redacted]" and requests[url]["cookie"] == "[redacted]"
        assert requests[url]["if-none-match"] == f'"{n}-Organizer {n}"'
        assert requests[url]["referer"] == f"{site.url}/list.html"
    assert "key-that-must-not-be-archived" not in b"".join(p.read_bytes() for p in second.warcs).decode("latin-1")
    warcio_check(first.warcs + second.warcs)


def test_a_changed_detail_page_is_fetched_and_archived_by_scrapy(tmp_path: Path) -> None:
    with HostileSite() as site:
        build_site(site)
        source = write_source(tmp_path, site)
        crawl(source, tmp_path)
        detail(site, 3, "A new organizer")
        site.requests.clear()
        second = crawl(source, tmp_path)

    assert second.report["complete"]
    assert second.report["revalidated"] == DETAILS - 1
    items = {i["fields"]["url"]: i for i in second.items}
    assert items[f"{site.url}/detail/3.html"]["detail"]["status"] == 200
    assert items[f"{site.url}/detail/3.html"]["fields"]["organizer"] == "A new organizer"
    responses = records(second.warcs, "response")
    assert f"{site.url}/detail/3.html" in responses   # the new page, stored in full
    assert f"{site.url}/detail/4.html" not in responses


def test_an_etag_new_on_every_request_stops_the_probes(tmp_path: Path) -> None:
    """A server whose ETags change on every answer (the same bytes): each probe gets a 200, and each page would
    cost two requests on every crawl; after a few, the origin's pages go straight to Scrapy."""
    with HostileSite() as site:
        build_site(site)
        source = write_source(tmp_path, site)
        crawl(source, tmp_path)
        for n in range(1, DETAILS + 1):   # new validators, same pages
            detail(site, n, f"Organizer {n}")
            site.pages[f"/detail/{n}.html"].headers[-1] = ("ETag", f'"{n}-rotated"')
        site.hits.clear()
        second = crawl(source, tmp_path)

    assert second.report["complete"] and second.report["revalidated"] == 0
    detail_requests = sum(n for path, n in site.hits.items() if path.startswith("/detail/"))
    assert detail_requests <= DETAILS + CHURN + 2, "probing must stop once most pages turn out changed"
    assert len(second.items) == DETAILS


def test_robots_txt_still_decides(tmp_path: Path) -> None:
    with HostileSite() as site:
        build_site(site)
        source = write_source(tmp_path, site)
        crawl(source, tmp_path)
        site.page("/robots.txt", "User-agent: *\nDisallow: /detail/5.html\n", headers=[("Content-Type", "text/plain")])
        site.hits.clear()
        second = crawl(source, tmp_path)

    assert site.hits["/detail/5.html"] == 0   # neither a probe nor Scrapy asked for it
    assert site.hits["/detail/6.html"] == 1
    assert second.report["revalidated"] == DETAILS - 1
    assert any("5.html" in p["url"] for p in second.report["problems"])


def test_the_page_limit_counts_confirmed_pages(tmp_path: Path) -> None:
    with HostileSite() as site:
        build_site(site)
        crawl(write_source(tmp_path, site), tmp_path)
        site.hits.clear()
        limited = write_source(tmp_path, site, extra=", max_pages: 6")
        second = crawl(limited, tmp_path)

    fetched = sum(n for path, n in site.hits.items() if path.startswith("/detail/"))
    assert fetched < DETAILS, "max_pages must bound the probes too"
    assert second.report["stop_reason"] == "closespider_pagecount"


def test_probes_connect_only_to_addresses_the_fetch_policy_allows() -> None:
    public = FetchPolicy.for_source(Source.model_validate({
        "id": "x", "name": "x", "start_urls": ["https://www.example.gov/list"],
        "items": {"selector": "li", "key": "url", "fields": {"url": "a::attr(href)"}}}))
    local = FetchPolicy.for_source(Source.model_validate({
        "id": "x", "name": "x", "start_urls": ["http://localhost:8080/list"],
        "items": {"selector": "li", "key": "url", "fields": {"url": "a::attr(href)"}}}))

    async def resolve(policy: FetchPolicy) -> list[str]:
        resolver = PolicyResolver(policy)
        try:
            return [r["host"] for r in await resolver.resolve("localhost", 8080)]
        finally:
            await resolver.close()

    with pytest.raises(OSError, match="fetch policy"):
        asyncio.run(resolve(public))
    assert asyncio.run(resolve(local)) == ["127.0.0.1"]
