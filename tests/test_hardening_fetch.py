"""Issue 8, failures 6 (SSRF), 7 (resource exhaustion, crawl side), 8 (brittle links) and 9 (secrets in
requests): real crawls (``listwatch crawl`` subprocesses) of hostile sites on loopback."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest
from parsel import Selector

from crawlers.bounds import MAX_JSON_DEPTH
from crawlers.extract import ExtractionError, extract_items, parse_document
from crawlers.fetch_policy import MAX_URL_LENGTH, FetchPolicy
from crawlers.pagination import next_pages
from crawlers.source_checks import MAX_PAGES
from crawlers.sources import Pagination, Source, SourceError, load_source
from tests.conftest import ROOT, crawl_sources, run_listwatch
from tests.hostile import HostileSite, listing_html, source_yaml

SECRET = "SECRET-INTERNAL-7f3a"


def _warc_text(paths: list[Path]) -> bytes:
    """Every WARC of a crawl, decompressed (gzip members), as one byte string to grep."""
    return b"".join(gzip.decompress(p.read_bytes()) for p in paths)


def _source(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


DETAIL = "detail:\n  fields: {body: 'body'}\n  attachments: {selector: 'a::attr(href)'}\n"


def test_detail_links_and_redirects_to_internal_addresses_are_refused_and_never_archived(tmp_path: Path) -> None:
    with HostileSite() as site, HostileSite() as internal:
        internal.page("/secret.html", f"<html><body>{SECRET}</body></html>")
        internal.page("/secret.pdf", SECRET, headers=[("Content-Type", "application/pdf")])
        other_port = f"{internal.url}/secret.html"
        site.page("/list.html", listing_html([
            (f"{site.url}/p/1.html", "An ordinary programme"),
            (other_port, "Another service on the crawl host"),
            ("http://169.254.169.254/latest/meta-data/", "Cloud metadata"),
            ("http://10.0.0.1/admin", "A private address"),
            (f"http://localhost:{internal.url.rsplit(':', 1)[1]}/secret.html", "A name resolving to loopback"),
            (f"{site.url}/go", "A redirect to another loopback port"),
        ]))
        site.page("/p/1.html", f'<html><body>Programme one <a href="{internal.url}/secret.pdf">form</a></body></html>')
        site.redirect("/go", other_port + "?via=redirect")
        extra = DETAIL + "fetch: {hosts: [localhost]}\n"
        path = _source(tmp_path, source_yaml(site.url, extra=extra))
        crawl = crawl_sources([path], data_dir=tmp_path / "d")["hostile"]

        assert internal.hits == {}, "nothing was ever sent to the internal service"
        assert crawl.report["complete"], crawl.report
        refused = {p["url"] for p in crawl.report["problems"] if p["kind"] == "refused"}
        assert refused == {other_port, other_port + "?via=redirect",
                           "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/admin",
                           f"http://localhost:{internal.url.rsplit(':', 1)[1]}/secret.html",
                           f"{internal.url}/secret.pdf"}, crawl.report["problems"]
        assert SECRET.encode() not in _warc_text(crawl.warcs)
        assert SECRET not in json.dumps(crawl.items, ensure_ascii=False)
        assert len(crawl.items) == 6 and site.hits["/p/1.html"] == 1 and site.hits["/go"] == 1
        by_key = {i["fields"]["url"]: i for i in crawl.items}
        assert by_key[f"{site.url}/p/1.html"]["fields"]["body"].startswith("Programme one")
        assert by_key[f"{site.url}/go"]["detail"]["error"] == "refused"


def test_the_policy_allows_only_the_sources_own_hosts_and_the_internal_origins_it_names() -> None:
    source = Source.model_validate({
        "id": "s", "name": "s", "start_urls": ["http://127.0.0.1:8000/list", "https://www.example.gov.cn/l"],
        "items": {"selector": "li", "fields": {"url": "a"}},
        "fetch": {"hosts": ["*.files.example.org", "intranet.example"], "internal": ["intranet.example:8080"]}})
    policy = FetchPolicy.for_source(source)
    assert policy.refuse_url("http://127.0.0.1:8000/p/1") is None
    assert policy.refuse_url("http://127.0.0.1:8001/p/1"), "another loopback port"
    assert policy.refuse_url("http://169.254.169.254/latest/meta-data/")
    assert policy.refuse_url("http://[fd00::1]/x") and policy.refuse_url("http://10.1.2.3/")
    assert policy.refuse_url("https://cdn.files.example.org/a.pdf") is None
    assert policy.refuse_url("https://evil.example.com/") and policy.refuse_url("file:///etc/passwd")
    import ipaddress

    public, private = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")
    assert policy.refuse_address("https://www.example.gov.cn/l", public) is None
    assert policy.refuse_address("https://www.example.gov.cn/l", private), "DNS rebinding to a private address"
    assert policy.refuse_address("http://intranet.example:8080/", private) is None
    assert policy.refuse_address("http://intranet.example:9090/", private)
    assert policy.refuse_address("http://intranet.example/", ipaddress.ip_address("::ffff:169.254.169.254"))
    with pytest.raises(ValueError, match="neither a network"):
        Source.model_validate({**source.model_dump(exclude={"headers"}), "fetch": {"internal": ["intranet"]}})


def test_the_middleware_remembers_a_passed_check_for_that_exact_origin_only() -> None:
    """The per-request check is remembered per ``scheme://netloc`` (a crawl asks it thousands of times of one
    origin): a look-alike URL (other port, userinfo trick) is still checked, and refused."""
    import asyncio
    import ipaddress
    from types import SimpleNamespace

    from scrapy import Request
    from scrapy.http import HtmlResponse

    from crawlers.fetch_policy import FetchPolicyMiddleware, FetchRefused

    source = Source.model_validate({"id": "s", "name": "s",
                                    "start_urls": ["http://127.0.0.1:8000/list", "https://www.example.gov.cn/l"],
                                    "items": {"selector": "li", "fields": {"url": "a"}}})
    spider = SimpleNamespace(source=source)
    middleware = FetchPolicyMiddleware(SimpleNamespace(spider=spider))  # type: ignore[arg-type]

    def request(url: str) -> None:
        asyncio.run(middleware.process_request(Request(url), spider))  # type: ignore[arg-type]

    for _ in range(2):
        request("http://127.0.0.1:8000/p/1?x=1")
    for url in ("http://127.0.0.1:8001/p/1", "http://127.0.0.1:8000@169.254.169.254/p/1",
                "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(FetchRefused):
            request(url)

    def answer(url: str, address: str) -> None:
        response = HtmlResponse(url, ip_address=ipaddress.ip_address(address))
        middleware.process_response(Request(url), response, spider)  # type: ignore[arg-type]

    for _ in range(2):
        answer("https://www.example.gov.cn/p/2", "93.184.216.34")
    with pytest.raises(FetchRefused, match="answered from a refused address"):  # DNS rebinding, same origin
        answer("https://www.example.gov.cn/p/3", "10.0.0.7")


def test_a_rendered_pages_own_requests_to_internal_addresses_are_refused(tmp_path: Path) -> None:
    with HostileSite() as site, HostileSite() as internal:
        internal.page("/leak.js", f"document.title = '{SECRET}';", headers=[("Content-Type", "text/javascript")])
        internal.page("/pixel.png", SECRET, headers=[("Content-Type", "image/png")])
        page = listing_html([(f"{site.url}/p/1.html", "One")],
                            extra=f'<script src="{internal.url}/leak.js"></script><img src="{internal.url}/pixel.png">')
        site.page("/list.html", page)
        extra = "render: {mode: browser, wait_until: load, screenshot: false}\n"
        path = _source(tmp_path, source_yaml(site.url, extra=extra))
        crawl = crawl_sources([path], data_dir=tmp_path / "d")["hostile"]
        assert len(crawl.items) == 1, crawl.report
        assert internal.hits == {}, "the browser never reached the internal service"
        assert SECRET.encode() not in _warc_text(crawl.warcs)


def _bomb(inflated: int = 1 << 30) -> bytes:
    """A gzip body of ``inflated`` zero bytes (1 GiB → about 1 MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [packer.compress(chunk) for _ in range(inflated >> 20)]
    return b"".join([*parts, packer.flush()])


# VmHWM is the peak of this process's own memory map. Not ru_maxrss: Linux folds the parent's high-water mark
# into it across fork/vfork + exec, so under a long pytest session it reports pytest's size, not the crawl's.
MEASURE_RSS = """
import atexit, re, sys
out = sys.argv.pop(1)
def peak_kib():
    return re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
atexit.register(lambda: open(out, "w").write(peak_kib()))
from scheduler.cli import app
app(prog_name="listwatch")
"""


def test_a_gzip_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    bomb = _bomb()
    assert len(bomb) < 1_200_000
    with HostileSite() as site:
        site.page("/list.html", listing_html([(f"{site.url}/bomb.html", "Bomb"), (f"{site.url}/p/2.html", "Two")]))
        site.page("/bomb.html", bomb, headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")])
        site.page("/p/2.html", "<html><body>Two</body></html>")
        path = _source(tmp_path, source_yaml(site.url, extra="detail: {fields: {body: 'body'}}\n"))
        env = {**os.environ, "LISTWATCH_DATA_DIR": str(tmp_path / "d"),
               "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml")}
        rss = tmp_path / "rss"
        done = subprocess.run([sys.executable, "-c", MEASURE_RSS, str(rss), "crawl", "--json", str(path)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300, check=False)
        report = json.loads(done.stdout)[0]
        peak_mib = int(rss.read_text()) / 1024
        print(f"crawl of a {len(bomb)} B gzip bomb: peak RSS {peak_mib:.0f} MiB")  # shown with pytest -s
        assert peak_mib < 400, f"the crawl peaked at {peak_mib:.0f} MiB RSS"
        assert [p["kind"] for p in report["problems"] if p["url"].endswith("/bomb.html")] == ["too-large"]
        assert report["complete"], report


def test_a_page_claiming_a_billion_pages_builds_no_page_list() -> None:
    rules = Pagination(kind="template", template="list_{n}.html", total={"css": ".pages", "type": "int"},
                       max_pages=MAX_PAGES)
    doc = Selector(text='<div class="pages">999999999</div>')
    tracemalloc.start()
    pages = next_pages(rules, start_url="http://x/list.html", url="http://x/list.html", number=1, doc=doc,
                       item_count=10)
    first = list(itertools.islice(pages, 3))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [p.number for p in first] == [2, 3, 4]
    assert peak < 1_000_000, f"{peak} bytes to start paging"


def test_max_pages_of_a_billion_is_refused_at_load_naming_the_field(tmp_path: Path) -> None:
    path = _source(tmp_path, source_yaml("http://127.0.0.1:1", extra=(
        "pagination: {kind: template, template: 'l_{n}.html', max_pages: 1000000000}\n")))
    with pytest.raises(SourceError, match=rf"pagination\.max_pages: .*{MAX_PAGES}"):
        load_source(path)


def test_json_nested_beyond_the_bound_fails_the_page_cleanly() -> None:
    assert parse_document('{"a":' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH, "json")
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        with pytest.raises(ExtractionError, match="nested"):
            parse_document('{"a":' * depth + "1" + "}" * depth, "json")


def test_one_malformed_href_costs_only_its_own_item(tmp_path: Path) -> None:
    with HostileSite() as site:
        site.page("/list.html", listing_html([(f"{site.url}/p/1.html", "One"), ("http://[x", "Broken"),
                                              ("/p/3.html", "Three"), ("http://a:99999/", "Bad port")]))
        crawl = crawl_sources([_source(tmp_path, source_yaml(site.url))], data_dir=tmp_path / "d")["hostile"]
        assert sorted(i["fields"]["url"] for i in crawl.items) == [f"{site.url}/p/1.html", f"{site.url}/p/3.html"]
        messages = {w["message"] for w in crawl.report["warnings"]}
        assert {"url: 'http://[x' is not a valid URL", "url: 'http://a:99999/' is not a valid URL",
                "item 1 has no 'url'", "item 3 has no 'url'"} <= messages, messages
        assert not crawl.report["problems"] and crawl.report["pages_ok"]["listing"] == 1


def test_a_detail_link_longer_than_scrapys_limit_keeps_its_item(tmp_path: Path) -> None:
    """Scrapy's ``URLLENGTH_LIMIT`` (2083) dropped a detail request together with the listing item it carries:
    the programme silently never reached items.jsonl (a false removal once its URL grew). A long link is now
    fetched; one over the fetch policy's bound is a refused page whose item is kept."""
    with HostileSite() as site:
        long, huge = "/p/long.html?q=" + "x" * 3000, "/p/huge.html?q=" + "y" * MAX_URL_LENGTH
        site.page("/list.html", listing_html([(long, "Long"), (huge, "Huge"), ("/p/1.html", "Short")]))
        site.page(long, "<html><body>Programme long</body></html>")
        site.page("/p/1.html", "<html><body>Programme one</body></html>")
        path = _source(tmp_path, source_yaml(site.url, extra=DETAIL))
        crawl = crawl_sources([path], data_dir=tmp_path / "d")["hostile"]
        by_path = {i["fields"]["url"].removeprefix(site.url): i for i in crawl.items}
        assert set(by_path) == {long, huge, "/p/1.html"}, "every listed programme is an item"
        assert by_path[long]["fields"]["body"] == "Programme long" and site.hits[long] == 1
        assert by_path[huge]["detail"]["error"] == "refused" and site.hits[huge] == 0
        [problem] = crawl.report["problems"]
        assert problem["url"] == site.url + huge and "characters long" in problem["message"], problem


def test_source_headers_are_sent_but_never_written_in_clear(tmp_path: Path) -> None:
    token, key = "tok-9d8e7f6a5b4c", "key-1a2b3c4d5e6f"
    with HostileSite() as site:
        site.page("/list.html", listing_html([(f"{site.url}/p/1.html", "One")]))
        site.page("/p/1.html", "<html><body>One</body></html>")
        extra = DETAIL + "headers: {Authorization: 'Bearer ${H8_TOKEN}', X-Api-Key: '${H8_KEY}'}\n"
        path = _source(tmp_path, source_yaml(site.url, extra=extra))
        data = tmp_path / "d"
        done = run_listwatch(["crawl", "--json", str(path)], data_dir=data,
                             extra_env={"H8_TOKEN": token, "H8_KEY": key})
        assert done.returncode == 0, done.stderr[-2000:]
        sent = [r for r in site.requests if r.get("authorization")]
        assert sent and all(r["authorization"] == f"Bearer {token}" and r["x-api-key"] == key for r in sent)
        report = json.loads(done.stdout)[0]
        warcs = list((data / "archive").rglob("*.warc.gz")) + list((data / "spool").rglob("*.warc.gz"))
        assert warcs and report["complete"]
        warc = _warc_text(warcs)
        assert b"Authorization: [redacted]" in warc and b"X-Api-Key: [redacted]" in warc
        for secret in (token, key):
            assert secret.encode() not in warc
            assert secret not in done.stdout + done.stderr
            for path in data.rglob("*"):
                if path.is_file() and not path.name.endswith(".warc.gz"):
                    assert secret.encode() not in path.read_bytes(), path
        with sqlite3.connect(data / "catalog.sqlite") as db:
            dump = "\n".join(db.iterdump())
        assert token not in dump and key not in dump


def test_header_names_and_values_are_validated_at_load(tmp_path: Path) -> None:
    bad = _source(tmp_path, source_yaml("http://127.0.0.1:1", extra="headers: {'Bad Name': x}\n"))
    with pytest.raises(SourceError, match="not a valid HTTP header name"):
        load_source(bad)


def test_extraction_survives_a_page_of_broken_links() -> None:
    items = Source.model_validate({"id": "s", "name": "s", "start_urls": ["http://x/"],
                                   "items": {"selector": "li", "fields": {"url": {"css": "a::attr(href)",
                                                                                  "type": "url"}}}}).items
    assert items is not None
    html = "".join(f'<li><a href="{h}">x</a></li>' for h in ("http://[x", "/ok", "http://a:99999/", "//[::1"))
    found = extract_items(Selector(text=f"<ul>{html}</ul>"), items, "http://x/list")
    assert [f["url"] for f in found] == [None, "http://x/ok", None, None]
