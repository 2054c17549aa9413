"""The web JSON API over a catalog filled by real demo crawls: lists, Chinese search, access rules, signed links."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import select

from archive.catalog.models import Event, Program
from archive.storage import open_storage
from scheduler.api import create_app
from scheduler.settings import Settings
from scheduler.web.auth import SESSION_COOKIE
from tests.archive_tools import wacz_validate
from tests.conftest import run_listwatch

if TYPE_CHECKING:
    from tests.web_support import WebArchive

pytest_plugins = ("tests.web_support",)
pytestmark = [pytest.mark.slow]
TOKEN = "web-test-token-0123"     # tests.web_support.TOKEN
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings_for(arch: WebArchive, **api: object) -> Settings:
    return Settings(data_dir=arch.data_dir, api={"token": TOKEN, "public_url": "http://testserver", **api})


@pytest.fixture
def client(web_archive: WebArchive) -> Iterator[TestClient]:
    settings = settings_for(web_archive)
    app = create_app(settings, catalog=web_archive.catalog, storage=open_storage(settings))
    with TestClient(app, follow_redirects=False) as c:
        yield c


def changed_event(arch: WebArchive) -> Event:
    with arch.catalog.session() as s:
        event = s.scalars(select(Event).where(Event.kind == "changed", Event.source_id == "demo-mofcom")).first()
    assert event is not None
    return event


def test_sources_programmes_and_events_as_json(client: TestClient, web_archive: WebArchive) -> None:
    sources = {s["id"]: s for s in client.get("/api/sources", headers=AUTH).json()}
    assert set(sources) == {"demo-mofcom", "demo-tenders"}
    with web_archive.catalog.session() as s:
        missing = s.scalars(select(Program.key).where(Program.source_id == "demo-mofcom",
                                                      Program.status == "missing")).all()
    mofcom = sources["demo-mofcom"]
    assert mofcom["health"] == "ok" and mofcom["last_run"]["status"] == "complete"
    assert mofcom["programmes"]["missing"] == len(missing) > 0
    answer = client.get("/api/programmes", params={"source": "demo-mofcom", "status": "missing"}, headers=AUTH)
    assert sorted(p["key"] for p in answer.json()["programmes"]) == sorted(missing)
    event = changed_event(web_archive)
    events = client.get("/api/events", params={"kind": "changed"}, headers=AUTH).json()["events"]
    assert event.id in [e["id"] for e in events] and all(e["kind"] == "changed" for e in events)
    detail = client.get(f"/api/programmes/{event.program_id}", headers=AUTH).json()
    assert [v["fields"]["location"] for v in detail["versions"]][-1] == event.changes["location"][1]
    assert event.after_record_id in detail["captures"]


def test_pages_of_programmes_are_sorted_and_do_not_overlap(client: TestClient) -> None:
    first = client.get("/api/programmes", params={"sort": "title", "per_page": 7}, headers=AUTH).json()
    second = client.get("/api/programmes", params={"sort": "title", "per_page": 7, "page": 2}, headers=AUTH).json()
    titles = [p["title"] for p in first["programmes"] + second["programmes"]]
    assert first["has_next"] and len(titles) == 14 and titles == sorted(titles)
    assert len({p["id"] for p in first["programmes"] + second["programmes"]}) == 14


@pytest.mark.parametrize("query", ["水稻", "杂交水稻", "研修班", "东盟 研修", "卫星", "培训", "2026", "no-such-thing"])
def test_search_finds_exactly_the_programmes_containing_every_term(client: TestClient, web_archive: WebArchive,
                                                                   query: str) -> None:
    with web_archive.catalog.session() as s:
        rows = s.execute(select(Program.id, Program.search_text)).all()
    expected = {pid for pid, text in rows if all(t in text for t in query.lower().split())}
    answer = client.get("/api/programmes", params={"q": query, "per_page": 500}, headers=AUTH).json()
    assert {p["id"] for p in answer["programmes"]} == expected
    if query in ("水稻", "杂交水稻"):
        assert expected and all("水稻" in p["title"] for p in answer["programmes"])


def test_reading_needs_the_token_a_sign_in_or_a_signed_link(client: TestClient, web_archive: WebArchive) -> None:
    assert client.get("/api/programmes").status_code == 401
    assert client.get("/cdx", params={"url": web_archive.site_url + "/"}).status_code == 401
    page = client.get("/programmes?q=x")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fprogrammes%3Fq%3Dx"
    assert client.post("/login", data={"token": "wrong", "next": "/changes"}).status_code == 401
    signed_in = client.post("/login", data={"token": TOKEN, "next": "/changes"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/changes"
    assert client.get("/api/programmes").status_code == 200     # the cookie now opens reading
    client.cookies.clear()
    assert client.post("/login", data={"token": TOKEN, "next": "https://evil.example/"}).headers["location"] == "/"


def test_state_changes_need_the_token_or_a_session_with_its_csrf_token(client: TestClient) -> None:
    body = {"name": "web-test", "target": "json://127.0.0.1:9/hook"}
    refused = client.post("/api/subscriptions", json=body)
    assert refused.status_code == 401 and "sign in" in refused.json()["detail"]
    assert client.post("/subscriptions", data={"name": "x", "target": "json://127.0.0.1:9/"}).status_code == 303
    client.post("/login", data={"token": TOKEN})
    no_csrf = client.post("/api/subscriptions", json=body)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    assert client.post("/subscriptions", data={"csrf": "forged", **body}).status_code == 403
    page = client.get("/subscriptions").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert client.post("/subscriptions", data={"csrf": csrf, **body}).status_code == 200
    assert "web-test" in [s["name"] for s in client.get("/api/subscriptions").json()]
    # the page's Remove form: its CSRF token too; an unknown name is a page saying so
    assert client.post("/subscriptions", data={"csrf": csrf, **body, "name": "web-form"}).status_code == 200
    assert client.post("/subscriptions/web-form/delete", data={"csrf": "forged"}).status_code == 403
    unknown = client.post("/subscriptions/nobody/delete", data={"csrf": csrf})
    assert unknown.status_code == 404 and "no subscription named" in unknown.text
    removed = client.post("/subscriptions/web-form/delete", data={"csrf": csrf})
    assert removed.status_code == 303 and removed.headers["location"] == "/subscriptions"
    assert "web-form" not in [s["name"] for s in client.get("/api/subscriptions").json()]
    client.cookies.delete(SESSION_COOKIE)
    assert client.delete("/api/subscriptions/web-test").status_code == 401
    assert client.delete("/api/subscriptions/web-test", headers=AUTH).status_code == 200
    assert client.post("/api/subscriptions", json={**body, "mode": "weekly"}, headers=AUTH).status_code == 400


def test_alert_evidence_links_open_without_the_token(client: TestClient, web_archive: WebArchive) -> None:
    from scheduler.alerts.messages import load_alerts

    event = changed_event(web_archive)
    with web_archive.catalog.session() as s:
        alert = load_alerts(s, settings_for(web_archive), [event.id])[event.id]
    assert alert.before is not None and alert.after is not None
    for evidence in (alert.before, alert.after):
        link = evidence.record.removeprefix("http://testserver")
        assert "sig=" in link
        answer = client.get(link)
        assert answer.status_code == 200 and answer.content.startswith(b"WARC/1.1")
        assert evidence.record_id.strip("<>").encode() in answer.content
        unsigned = link.split("?", 1)[0]
        assert client.get(unsigned).status_code == 401
    other = alert.after.record.removeprefix("http://testserver").replace(
        alert.after.record_id.strip("<>"), alert.before.record_id.strip("<>"))
    assert client.get(other).status_code == 401, "a signature opens only the path it was made for"


def test_signed_links_expire(web_archive: WebArchive, monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.web.signing import signed_link

    settings = settings_for(web_archive, link_ttl=3600)
    app = create_app(settings, catalog=web_archive.catalog, storage=open_storage(settings))
    fresh = signed_link(settings, "http://testserver/api/sources").removeprefix("http://testserver")
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 7200)
    old = signed_link(settings, "http://testserver/api/sources").removeprefix("http://testserver")
    monkeypatch.undo()
    with TestClient(app) as c:
        assert c.get(fresh).status_code == 200
        assert c.get(old).status_code == 401


def test_open_reading_on_a_trusted_network_still_guards_changes(web_archive: WebArchive) -> None:
    settings = Settings(data_dir=web_archive.data_dir, api={"require_token": False})
    app = create_app(settings, catalog=web_archive.catalog, storage=open_storage(settings))
    with TestClient(app) as c:
        assert c.get("/api/programmes").status_code == 200 and c.get("/programmes").status_code == 200
        refused = c.post("/api/subscriptions", json={"name": "n", "target": "json://127.0.0.1:9/"})
        assert refused.status_code == 403 and "no api.token" in refused.json()["detail"]


def test_downloads_of_the_current_view_and_of_one_programmes_evidence(client: TestClient, web_archive: WebArchive,
                                                                       tmp_path: Path) -> None:
    view = {"source": "demo-mofcom", "q": "研修", "sort": "title"}
    listed = client.get("/api/programmes", params=view, headers=AUTH).json()["programmes"]
    csv_text = client.get("/api/programmes.csv", params=view, headers=AUTH).text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,source,key,title") and len(lines) == len(listed) + 1
    assert [line.split(",")[3] for line in lines[1:]] == [p["title"] for p in listed]
    event = changed_event(web_archive)
    wacz = client.get(f"/programmes/{event.program_id}/evidence.wacz", headers=AUTH)
    assert wacz.status_code == 200
    with zipfile.ZipFile(BytesIO(wacz.content)) as zf:
        index = zf.read("indexes/index.cdxj").decode().splitlines()
        package = json.loads(zf.read("datapackage.json"))
        warc = zf.read("archive/evidence.warc.gz")
    urls = {json.loads(line.split(" ", 2)[2])["url"] for line in index}
    detail = client.get(f"/api/programmes/{event.program_id}", headers=AUTH).json()
    assert {c["url"] for c in detail["captures"].values()} <= urls
    assert all(u.endswith((".html", "/")) or u.startswith("urn:") for u in urls), urls
    assert len(index) < 20, "only this programme's captures, not whole crawls"
    assert {r["path"] for r in package["resources"]} == {"archive/evidence.warc.gz", "indexes/index.cdxj",
                                                           "pages/pages.jsonl"}
    assert len(warc) == next(r["bytes"] for r in package["resources"] if r["path"].startswith("archive/"))
    (tmp_path / "evidence.wacz").write_bytes(wacz.content)
    wacz_validate(tmp_path / "evidence.wacz")                    # the wacz tool accepts it


def test_bad_filters_are_refused_with_what_was_typed(client: TestClient) -> None:
    answer = client.get("/api/programmes", params={"status": "gone"}, headers=AUTH)
    assert answer.status_code == 400 and "'gone'" in answer.json()["detail"] and "active" in answer.json()["detail"]
    page = client.get("/programmes", params={"sort": "colour"}, headers=AUTH)
    assert page.status_code == 400 and "colour" in page.text and "first_seen" in page.text
    assert client.get("/api/events", params={"since": "yesterday"}, headers=AUTH).status_code == 400


def test_events_command_prints_json(web_archive: WebArchive, tmp_path: Path) -> None:
    done = run_listwatch(["events", "--kind", "changed", "--json"], data_dir=web_archive.data_dir)
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)
    assert events and {e["kind"] for e in events} == {"changed"}
    assert changed_event(web_archive).id in [e["id"] for e in events]
    bad = run_listwatch(["events", "--kind", "edited"], data_dir=web_archive.data_dir)
    assert bad.returncode == 2 and "'edited'" in bad.stderr
    event = changed_event(web_archive)
    with web_archive.catalog.session() as s:
        key = s.get(Program, event.program_id).key  # type: ignore[union-attr]
    assert key in [e["programme_key"] for e in events]
    table = run_listwatch(["events", "--kind", "changed"], data_dir=web_archive.data_dir)
    assert f"  {key}  " in table.stdout, "the key `programs show SOURCE KEY` takes, whole, under its event"
    shown = run_listwatch(["programs", "show", event.source_id, key], data_dir=web_archive.data_dir)
    assert shown.returncode == 0 and key in shown.stdout


def test_pywbs_index_endpoint_needs_its_key_and_answers_cdxj(client: TestClient, web_archive: WebArchive) -> None:
    from scheduler.web.signing import replay_index_key

    key = replay_index_key(settings_for(web_archive))
    url = web_archive.site_url + "/mofcom/list/index.html"
    assert client.get("/replay-index/wrong/cdx", params={"url": url}).status_code == 403
    lines = client.get(f"/replay-index/{key}/cdx", params={"url": url}).text.splitlines()
    assert len(lines) == 3, "one capture a day"
    stamps = [line.split(" ")[1] for line in lines]
    assert stamps == sorted(stamps)
    fields = json.loads(lines[0].split(" ", 2)[2])
    assert (web_archive.data_dir / "archive" / fields["filename"]).is_file() and fields["offset"].isdigit()
    closest = client.get(f"/replay-index/{key}/cdx", params={"url": url, "closest": stamps[-1], "limit": 1}).text
    assert closest.split(" ")[1] == stamps[-1]
