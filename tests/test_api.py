"""The HTTP API: token auth, CDX / Memento / records / screenshots / WACZ, and refusal of bad input."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from archive.cdx import query_captures
from archive.links import record_link
from archive.retrieval import read_payload, read_record
from scheduler.api import ApiConfigError, create_app
from scheduler.settings import Settings

if TYPE_CHECKING:
    from tests.retrieval_support import Archived

pytest_plugins = ("tests.retrieval_support",)   # fixtures: archived (+ rclone_s3)
pytestmark = [pytest.mark.slow, pytest.mark.browser]
TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LISTING = "/mofcom/list/index.html"


def settings_for(tmp: Path, **api: object) -> Settings:
    return Settings(data_dir=tmp, api={"token": TOKEN, "public_url": "http://testserver", **api},
                    replay={"public_url": "http://replay.test"})


@pytest.fixture
def client(archived: Archived, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path), catalog=archived.catalog, storage=archived.storage)
    with TestClient(app) as c:
        yield c


def test_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    with pytest.raises(ApiConfigError, match=r"api\.token is not set"):
        create_app(Settings(data_dir=tmp_path))


def test_no_token_or_a_wrong_token_is_401_but_healthz_is_open(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        answer = client.get("/cdx", params={"url": "http://example.com/"}, headers=headers)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in answer.json()["detail"]
    assert client.get("/openapi.json").status_code == 401


def test_token_can_be_switched_off(archived: Archived, tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, api={"require_token": False}), catalog=archived.catalog,
                     storage=archived.storage)
    with TestClient(app) as c:
        assert c.get("/cdx", params={"url": archived.url(LISTING)}).status_code == 200


def test_openapi_document_lists_the_routes(client: TestClient) -> None:
    doc = client.get("/openapi.json", headers=AUTH).json()
    assert {"/cdx", "/timemap/link/{url}", "/timegate/{url}", "/records/{record_id}", "/screenshot",
            "/export/wacz"} <= set(doc["paths"])


def test_cdx_in_cdxj_and_json(client: TestClient, archived: Archived) -> None:
    url = archived.url(LISTING)
    cdxj = client.get("/cdx", params={"url": url}, headers=AUTH)
    assert cdxj.status_code == 200 and cdxj.headers["content-type"].startswith("text/x-cdxj")
    assert len(cdxj.text.splitlines()) == 2
    js = client.get("/cdx", params={"url": archived.url("/mofcom/*"), "output": "json", "limit": 5,
                                    "filter": "=status:200", "fl": "url,status"}, headers=AUTH)
    rows = [line for line in js.text.splitlines() if line]
    assert len(rows) == 5 and all('"status": "200"' in r for r in rows)


def test_timemap_and_timegate(client: TestClient, archived: Archived) -> None:
    url = archived.url(LISTING)
    first, second = query_captures(archived.catalog, url)
    tm = client.get(f"/timemap/link/{url}", headers=AUTH)
    assert tm.status_code == 200 and tm.headers["content-type"].startswith("application/link-format")
    assert tm.text.count('memento"; datetime=') == 2
    gate = client.get(f"/timegate/{url}", headers={**AUTH, "Accept-Datetime": "Mon, 01 Jan 2001 00:00:00 GMT"},
                      follow_redirects=False)
    assert gate.status_code == 302 and gate.headers["Vary"] == "accept-datetime"
    assert gate.headers["Location"] == f"http://replay.test/archive/{first.timestamp}/{url}"
    assert 'rel="original"' in gate.headers["Link"] and 'rel="timemap"' in gate.headers["Link"]
    latest = client.get(f"/timegate/{url}", headers=AUTH, follow_redirects=False)
    assert latest.headers["Location"].endswith(f"/archive/{second.timestamp}/{url}")


def test_records_payloads_and_screenshots(client: TestClient, archived: Archived) -> None:
    entry = query_captures(archived.catalog, archived.url(LISTING))[0]
    path = record_link("http://testserver", entry.record_id).removeprefix("http://testserver")
    raw = client.get(path, headers=AUTH)
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/warc"
    assert raw.content == read_record(archived.catalog, archived.storage, entry.record_id)
    body = client.get(path + "/payload", headers=AUTH)
    assert body.status_code == 200 and body.content == read_payload(archived.catalog, archived.storage,
                                                                    entry.record_id).body
    assert "Memento-Datetime" in body.headers
    # an archived page's scripts never run on the API's origin (with the reader's session), and it cannot be
    # framed either: one policy with both directives
    [policy] = body.headers.get_list("Content-Security-Policy")
    assert {d.strip() for d in policy.split(";")} == {"sandbox", "frame-ancestors 'none'"}, policy
    assert body.headers["X-Content-Type-Options"] == "nosniff" and "X-Listwatch-Untrusted" not in body.headers
    # the app's own answers are not sandboxed (their scripts run), only kept out of frames
    own = client.get("/timemap/link/" + archived.url(LISTING), headers=AUTH)
    assert own.headers.get_list("Content-Security-Policy") == ["frame-ancestors 'none'"]
    shot = client.get("/screenshot", params={"url": archived.url("/academy/index.html")}, headers=AUTH)
    assert shot.status_code == 200 and shot.content.startswith(b"\x89PNG")


def test_wacz_export_streams_a_zip(client: TestClient) -> None:
    answer = client.get("/export/wacz", params={"source": "demo-academy"}, headers=AUTH)
    assert answer.status_code == 200
    with zipfile.ZipFile(BytesIO(answer.content)) as zf:
        assert "datapackage.json" in zf.namelist()


@pytest.mark.parametrize("path, params", [
    ("/records/..%2f..%2fetc%2fpasswd", {}),
    ("/records/../../etc/passwd", {}),
    ("/records/%2e%2e%2f%2e%2e%2fetc%2fpasswd/payload", {}),
    ("/cdx", {"url": "file:///etc/passwd"}),
    ("/cdx", {"url": "http://exa mple.com/"}),
    ("/cdx", {"url": "http://example.com:99999/"}),
    ("/cdx", {"url": "http://example.com/", "from": "2026", "to": "2025"}),
    ("/cdx", {"url": "http://example.com/", "from": "yesterday"}),
    ("/cdx", {"url": "http://example.com/", "limit": "-1"}),
    ("/cdx", {"url": "http://example.com/", "output": "xml"}),
    ("/screenshot", {"url": "file:///etc/passwd"}),
    ("/screenshot", {"url": "http://example.com/", "at": "../../etc"}),
    ("/export/wacz", {"source": "../../etc"}),
    ("/export/wacz", {"source": "demo-mofcom", "from": "2026", "to": "2020"}),
    ("/feeds/..%2f..%2fetc.atom", {}),
    ("/timemap/link/file:///etc/passwd", {}),
    ("/timegate/javascript:alert(1)", {}),
])
def test_bad_input_is_a_clear_4xx(client: TestClient, path: str, params: dict[str, str]) -> None:
    answer = client.get(path, params=params, headers=AUTH)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.json()["detail"], answer.text
    assert "root:" not in answer.text


def test_bad_accept_datetime_and_unknown_things(client: TestClient, archived: Archived) -> None:
    url = archived.url(LISTING)
    bad = client.get(f"/timegate/{url}", headers={**AUTH, "Accept-Datetime": "last tuesday"})
    assert bad.status_code == 400 and "Accept-Datetime" in bad.json()["detail"]
    missing = client.get("/records/urn:uuid:00000000-0000-0000-0000-000000000000", headers=AUTH)
    assert missing.status_code == 404 and "no record" in missing.json()["detail"]
    assert client.get(f"/timemap/link/{archived.url('/nothing.html')}", headers=AUTH).status_code == 404


def test_atom_feeds_are_served(client: TestClient) -> None:
    for path in ("/feeds/atom.xml", "/feeds/demo-mofcom.atom"):
        answer = client.get(path, headers=AUTH)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/atom+xml")
        assert b"<feed" in answer.content
