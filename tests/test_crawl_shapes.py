"""Each demo listing shape, crawled for real, yields exactly the expected programmes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawlers.demo.programmes import ATTACHMENT_LABELS, expected_programmes
from tests.conftest import Crawl

SHAPES = {
    "demo-mofcom": "mofcom",
    "demo-academy": "academy",
    "demo-academy-api": "academy",
    "demo-api": "api",
    "demo-feed": "feed",
    "demo-tenders": "tenders",
}
DETAIL_FIELDS = {"demo-mofcom": ("organizer", "deadline", "location"),
                 "demo-academy": ("organizer", "deadline", "location"),
                 "demo-tenders": ("organizer", "deadline", "location")}


def records(crawl: Crawl) -> list:
    found = []
    for path in crawl.warcs:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                found.append((record.rec_type, record.rec_headers, record.http_headers,
                              record.content_stream().read()))
    return found


@pytest.mark.parametrize("source_id", sorted(SHAPES))
def test_shape_extracts_exactly_the_expected_programmes(day0: dict[str, Crawl], source_id: str) -> None:
    crawl = day0[source_id]
    expected = {p["url"]: p for p in expected_programmes(SHAPES[source_id], 0)}
    got = crawl.by_path
    assert sorted(got) == sorted(expected)
    for path, want in expected.items():
        fields = got[path]["fields"]
        assert fields["title"] == want["title"], path
        assert fields["date"][:10] == want["date"], path
        for name in DETAIL_FIELDS.get(source_id, ()):
            assert fields[name] == want[name], (path, name)
    assert crawl.report["complete"], crawl.report
    assert crawl.report["problems"] == [] and crawl.report["challenges"] == []


def test_gbk_detail_page_with_a_lying_utf8_header_decodes_to_the_right_chinese(day0: dict[str, Crawl]) -> None:
    crawl = day0["demo-mofcom"]
    first = expected_programmes("mofcom", 0)[0]
    item = crawl.by_path[first["url"]]
    assert item["fields"]["organizer"] == first["organizer"]
    responses = {h.get_header("WARC-Record-ID") for t, h, _, _ in records(crawl) if t == "response"}
    assert item["detail"]["record"] in responses and "text" not in item["detail"], \
        "an item references its detail page's capture instead of copying the page text"
    assert "\ufffd" not in json.dumps(item, ensure_ascii=False)


def test_attachments_are_listed_and_archived(day0: dict[str, Crawl]) -> None:
    crawl = day0["demo-mofcom"]
    expected = {p["url"]: p["attachments"] for p in expected_programmes("mofcom", 0)}
    archived = {h.get_header("WARC-Target-URI") for t, h, _, _ in records(crawl) if t == "response"}
    for path, attachments in expected.items():
        found = crawl.by_path[path].get("attachments", [])
        got = [urlsplit(a["url"]).path for a in found]
        assert got == attachments, path  # in page order, each with the link's text as its name
        assert [a["name"] for a in found] == [ATTACHMENT_LABELS[a.rsplit(".", 1)[1]] for a in attachments]
        for attachment in attachments:
            assert any(u.endswith(attachment) for u in archived), attachment


def test_every_exchange_is_a_linked_request_response_pair_with_sha256(day0: dict[str, Crawl]) -> None:
    for crawl in day0.values():
        recs = records(crawl)
        assert recs[0][0] == "warcinfo"
        responses = {h.get_header("WARC-Record-ID"): h for t, h, _, _ in recs if t in ("response", "revisit")}
        requests = [h for t, h, _, _ in recs if t == "request"]
        assert responses and len(requests) == len(responses)
        for request in requests:
            response = responses[request.get_header("WARC-Concurrent-To")]
            assert response.get_header("WARC-Target-URI") == request.get_header("WARC-Target-URI")
        for header in responses.values():
            assert header.get_header("WARC-Payload-Digest").startswith("sha256:")
            assert header.get_header("WARC-Block-Digest").startswith("sha256:")
            assert header.get_header("WARC-IP-Address") == "127.0.0.1"
            if header.get_header("WARC-Type") == "revisit":
                assert header.get_header("WARC-Refers-To-Target-URI") and header.get_header("WARC-Refers-To-Date")


def test_warcinfo_describes_the_crawl(day0: dict[str, Crawl]) -> None:
    crawl = day0["demo-mofcom"]
    info = records(crawl)[0][3].decode()
    for field in ("software: listwatch/", "format: WARC File Format 1.1", "conformsTo:", "isPartOf: demo-mofcom",
                  "robots: obey", "http-header-user-agent: listwatch-demo/0.1"):
        assert field in info


def test_metadata_record_ties_items_to_the_response_they_came_from(day0: dict[str, Crawl]) -> None:
    crawl = day0["demo-tenders"]
    recs = records(crawl)
    response_ids = {h.get_header("WARC-Record-ID") for t, h, _, _ in recs if t == "response"}
    listing_meta = [json.loads(body) | {"_refers": h.get_header("WARC-Refers-To")}
                    for t, h, _, body in recs if t == "metadata" and b'"role": "listing"' in body]
    assert len(listing_meta) == crawl.report["pages_ok"]["listing"]
    keys = set()
    for meta in listing_meta:
        assert meta["_refers"] in response_ids
        assert meta["outlinks"]
        keys |= {i["key"] for i in meta["items"]}
    assert keys == {i["key"] for i in crawl.items}
    by_record = {m["_refers"]: {i["key"] for i in m["items"]} for m in listing_meta}
    assert all(i["key"] in by_record[i["listing_record"]] for i in crawl.items)


def test_rendered_listing_keeps_subresources_dom_and_screenshot_but_never_dom_as_response(
        day0: dict[str, Crawl]) -> None:
    recs = records(day0["demo-academy"])
    by_uri = {}
    for rec_type, headers, _http, body in recs:
        by_uri.setdefault((rec_type, headers.get_header("WARC-Target-URI")), body)
    shell = [k for k in by_uri if k[0] == "response" and k[1].endswith("/academy/index.html")]
    assert shell, "navigation response missing"
    first_title = expected_programmes("academy", 0)[0]["title"]
    assert first_title not in by_uri[shell[0]].decode(), "a response record holds the rendered DOM"
    assert any(k[0] == "response" and "/academy/api/list?page=1" in k[1] for k in by_uri)
    assert any(k[0] == "response" and k[1].endswith("/academy/app.js") for k in by_uri)
    assert any(k[0] == "response" and k[1].endswith(".png") for k in by_uri)
    dom = by_uri[("resource", shell[0][1].replace("http", "urn:dom:http", 1))]
    assert first_title in dom.decode()
    png = by_uri[("resource", shell[0][1].replace("http", "urn:screenshot:http", 1))]
    assert png.startswith(b"\x89PNG")


def test_robots_txt_is_obeyed_and_archived(day0: dict[str, Crawl]) -> None:
    hits = day0["demo-mofcom"].report["site_hits"]
    assert hits.get("/robots.txt", 0) >= 1
    assert not any(path.startswith("/private") for path in hits)


def test_closed_warc_files_are_gzip_per_record_and_named_closed(day0: dict[str, Crawl]) -> None:
    for crawl in day0.values():
        for path in crawl.warcs:
            assert path.name.endswith(".warc.gz") and path.exists()
            assert not list(path.parent.glob("*.open"))
            with gzip.open(path) as fh:
                assert fh.read(8) == b"WARC/1.1"


def test_atom_feed_gives_the_same_programmes_as_rss(tmp_path: Path) -> None:
    from crawlers.demo.site import DemoSite
    from tests.conftest import DEMO_SOURCES, crawl_sources

    atom = tmp_path / "atom.yaml"
    atom.write_text((DEMO_SOURCES / "feed.yaml").read_text(encoding="utf-8")
                    .replace("id: demo-feed", "id: demo-atom").replace("/feed.xml", "/atom.xml"), encoding="utf-8")
    with DemoSite() as site:
        crawl = crawl_sources([atom], data_dir=tmp_path, site=site)["demo-atom"]
    expected = {p["url"]: p for p in expected_programmes("feed", 0)}
    assert sorted(crawl.by_path) == sorted(expected)
    for path, item in crawl.by_path.items():
        assert item["fields"]["title"] == expected[path]["title"]
        assert item["fields"]["date"][:10] == expected[path]["date"]
