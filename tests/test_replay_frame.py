"""The web UI's replay frame, in real Chromium: a hostile archived page inside it cannot take over the UI's tab.

``/capture/RECORD`` shows the archived page in an iframe from replay (pywb), where the archived site's own
scripts run. The UI itself refuses to be framed (tests/test_redteam_replay_host.py), but the frame's page
could still navigate the *top* window, the signed-in UI's tab, to a look-alike sign-in page once the user
clicks in it (browsers let a cross-origin frame do that after a click). A server on another 127.0.0.1 port
stands in for replay (``replay.public_url`` points at it) and serves such a page at the capture's replay URL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from archive.catalog import open_catalog
from archive.cdx import query_captures
from archive.links import replay_link
from archive.spool import sync
from archive.storage import LocalStorage
from tests.archive_tools import free_port
from tests.hostile import HostileSite
from tests.test_redteam_replay_host import signed_in
from tests.warc_factory import write_spool_warcs
from tests.web_support import running

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytest_plugins = ("tests.web_support",)   # fixture: browser
pytestmark = [pytest.mark.browser]
TOKEN = "replay-frame-token-0123"
PAGE = "http://127.0.0.1:8000/list/1.html"


@dataclass
class Setup:
    web: str
    replay: HostileSite
    record_id: str


def takeover_page(replay: str) -> str:
    """On a click: send the top window to a phishing page, and a second later load /done in this frame (a
    sign that the click was handled and the top window, if it could be navigated, already was). The timer is
    set first: in a sandboxed frame the assignment to ``top.location`` throws."""
    return (f'<a id="go" href="#" onclick="setTimeout(function () {{ location.href = \'{replay}/done\'; }}, 1000); '
            f"top.location.href = '{replay}/phished'; return false\">next page</a>")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("replay-frame")
    data = tmp / "data"
    write_spool_warcs(tmp / "spool", pages=2)
    catalog = open_catalog(f"sqlite:///{(data / 'catalog.sqlite').resolve()}")
    assert sync(catalog, LocalStorage(data / "archive"), tmp / "spool").ok
    entry = query_captures(catalog, PAGE)[0]
    catalog.dispose()
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    with HostileSite() as replay:
        replay.page(replay_link(replay.url, entry.url, entry.timestamp).removeprefix(replay.url),
                    takeover_page(replay.url))
        replay.page("/phished", "<h1>Sign in to listwatch</h1>")
        replay.page("/done", "<p>done</p>")
        env = {**os.environ, "LISTWATCH_DATA_DIR": str(data), "LISTWATCH_SETTINGS": str(tmp / "none.yaml"),
               "LISTWATCH_API__TOKEN": TOKEN, "LISTWATCH_API__PORT": str(port), "LISTWATCH_API__PUBLIC_URL": web,
               "LISTWATCH_REPLAY__PUBLIC_URL": replay.url}
        with running(["serve"], env, f"{web}/healthz", tmp / "serve.log"):
            yield Setup(web, replay, entry.record_id.strip("<>"))


def test_a_replayed_page_cannot_navigate_the_uis_tab(browser: Browser, setup: Setup) -> None:
    page = signed_in(browser, setup.web, f"/capture/{setup.record_id}", TOKEN)
    page.frame_locator("iframe.replay").locator("#go").click()
    deadline = time.monotonic() + 30
    while not (setup.replay.hits["/done"] or setup.replay.hits["/phished"]):
        assert time.monotonic() < deadline, "the framed page never handled the click"
        time.sleep(0.05)
    assert setup.replay.hits["/phished"] == 0, "the replayed page sent the UI's tab to another site"
    assert page.url == f"{setup.web}/capture/{setup.record_id}"
    page.context.close()
