"""Memento (RFC 7089) as a real Memento client sees it: ``memento_client`` (the protocol's reference Python
client) against the archive API on a real socket, over a small archive (tests/warc_factory.py) in a local store.

End to end through pywb (TimeGate → memento in replay): tests/test_retrieval_replay.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI
from memento_client import MementoClient

from archive.catalog import open_catalog
from archive.retrieval import mementos, rfc1123
from archive.spool import sync
from archive.storage import LocalStorage
from scheduler.api import create_app
from scheduler.settings import Settings
from tests.http_support import serving_app
from tests.warc_factory import write_spool_warcs

REPLAY = "http://replay.test"
PAGE = "http://127.0.0.1:8000/list/1.html"


@dataclass
class Api:
    base: str
    datetimes: list[str]   # RFC 1123, of PAGE's mementos, oldest first


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("memento")
    spool = root / "spool"
    write_spool_warcs(spool, pages=3)
    time.sleep(1.1)   # memento URIs carry 14-digit timestamps: a second capture in the same second shares its URI
    write_spool_warcs(spool, pages=3, run="20260106T010203Z-d4e5f6", seed=2)   # a second capture of each page
    catalog = open_catalog(f"sqlite:///{root / 'catalog.sqlite'}")
    assert sync(catalog, LocalStorage(root / "store"), spool).ok

    def make_app(base: str) -> FastAPI:
        settings = Settings(data_dir=Path(root), api={"require_token": False, "public_url": base},
                            replay={"public_url": REPLAY})
        return create_app(settings, catalog=catalog)

    try:
        with serving_app(make_app) as base:
            yield Api(base, [rfc1123(e.moment) for e in mementos(catalog, PAGE)])
    finally:
        catalog.dispose()


def test_the_timegate_is_one_for_a_memento_client(api: Api) -> None:
    """memento_client asks with HEAD and wants a 302 with Vary: accept-datetime, Location and rel=original."""
    assert len(api.datetimes) == 2
    gate = f"{api.base}/timegate/{PAGE}"
    for wanted in ("Mon, 01 Jan 2001 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"):
        assert MementoClient.is_timegate(gate, accept_datetime=wanted)
    answer = MementoClient.request_head(gate, accept_datetime="Mon, 01 Jan 2001 00:00:00 GMT")
    links = MementoClient.parse_link_header(answer.headers["Link"])
    rels = MementoClient.get_uri_dt_for_rel(links, ["original", "timemap", "memento"])
    assert rels["original"]["uri"] == PAGE
    assert rels["timemap"]["uri"] == f"{api.base}/timemap/link/{PAGE}"
    assert rels["memento"]["datetime"] == [api.datetimes[0]]     # the nearest: the first capture
    assert answer.headers["Location"] == rels["memento"]["uri"]
    assert answer.headers["Location"].startswith(f"{REPLAY}/archive/")


def test_the_timemap_parses_with_the_clients_link_format_reader(api: Api) -> None:
    timemap = f"{api.base}/timemap/link/{PAGE}"
    assert requests.head(timemap, timeout=30).status_code == 200
    answer = requests.get(timemap, timeout=30)
    assert answer.headers["Content-Type"].startswith("application/link-format")
    links = MementoClient.parse_link_header(answer.text.replace("\n", ""))
    rels = MementoClient.get_uri_dt_for_rel(links, ["original", "self", "timegate", "first", "last", "memento"])
    assert rels["original"]["uri"] == PAGE
    assert rels["self"]["uri"] == timemap
    assert rels["timegate"]["uri"] == f"{api.base}/timegate/{PAGE}"
    assert [rels["first"]["datetime"], rels["last"]["datetime"]] == [[api.datetimes[0]], [api.datetimes[-1]]]
    mementos_listed = [uri for uri, attrs in links.items() if "memento" in attrs.get("rel", [])]
    assert len(mementos_listed) == len(api.datetimes)


def test_unknown_urls_and_bad_datetimes_are_refused_as_the_rfc_says(api: Api) -> None:
    unknown = f"{api.base}/timegate/http://127.0.0.1:8000/never-archived.html"
    assert MementoClient.request_head(unknown).status_code == 404
    assert requests.head(f"{api.base}/timemap/link/http://127.0.0.1:8000/never.html", timeout=30).status_code == 404
    bad = MementoClient.request_head(f"{api.base}/timegate/{PAGE}", accept_datetime="yesterday")
    assert bad.status_code == 400
    assert "Accept-Datetime" in requests.get(f"{api.base}/timegate/{PAGE}", headers={"Accept-Datetime": "yesterday"},
                                             timeout=30, allow_redirects=False).json()["detail"]
