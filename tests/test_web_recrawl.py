"""The web's "Re-crawl now" button, in real Chromium, against a real ``listwatch run`` and ``listwatch serve``.

The daemon crawls the new source once at start; its next full crawl is six hours away. Pressing the button
(signed in, with the form's CSRF token) must make that same daemon crawl it again within seconds; a request
without the CSRF token, and one for a source with no scheduled crawl, change nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_support import DaemonProcess, env_for, runs, scheduled_source, wait_for
from playwright.sync_api import Browser

from archive.catalog import Catalog, open_catalog
from crawlers.demo.site import DemoSite
from tests.archive_tools import free_port
from tests.web_support import running

pytest_plugins = ("tests.web_support",)   # fixture: browser
pytestmark = [pytest.mark.slow, pytest.mark.browser]
SOURCE = "demo-mofcom"
TOKEN = "recrawl-token-0123"


def full_runs(catalog: Catalog) -> list[str]:
    return [r.id for r in runs(catalog, SOURCE) if r.kind == "full" and r.status != "running"]


def test_re_crawl_now_makes_the_running_scheduler_crawl_the_source_again(browser: Browser, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    with DemoSite() as site:
        scheduled_source(tmp_path / "sources", "mofcom.yaml", "{full: 6h, jitter: 0}")
        env = env_for(data_dir, tmp_path / "sources", site.url, deliver_interval=0.5) | {
            "LISTWATCH_API__TOKEN": TOKEN, "LISTWATCH_API__PORT": str(port), "LISTWATCH_API__PUBLIC_URL": web}
        daemon = DaemonProcess(env, tmp_path / "daemon.log")
        catalog = open_catalog(f"sqlite:///{data_dir.resolve() / 'catalog.sqlite'}")
        try:
            first = wait_for(lambda: full_runs(catalog), 120, "the daemon's first crawl of the new source")
            with running(["serve"], env, f"{web}/healthz", tmp_path / "serve.log"):
                page = browser.new_context().new_page()
                page.goto(f"{web}/login?next=/sources")
                page.fill("#token", TOKEN)
                page.keyboard.press("Enter")
                page.wait_for_url(f"{web}/sources")
                # without the form's CSRF token the session cookie alone changes nothing
                forged = page.request.post(f"{web}/sources/{SOURCE}/recrawl", form={"csrf": "forged"})
                assert forged.status == 403
                unknown = page.request.post(f"{web}/sources/no-such-source/recrawl",
                                            form={"csrf": page.locator("input[name=csrf]").first.input_value()})
                assert unknown.status == 409 and "no scheduled crawl" in unknown.text()
                anonymous = browser.new_context().request.post(f"{web}/sources/{SOURCE}/recrawl",
                                                               form={"csrf": "x"}, max_redirects=0)
                assert anonymous.status in (303, 401, 403)
                assert full_runs(catalog) == first

                page.get_by_role("button", name=f"Re-crawl {SOURCE} now").click()
                page.wait_for_url(f"{web}/sources?recrawl={SOURCE}")
                assert f"Re-crawl of {SOURCE} requested" in page.get_by_role("status").inner_text()
                again = wait_for(lambda: [r for r in full_runs(catalog) if r not in first], 120,
                                 "a second full crawl after Re-crawl now")
                assert len(again) == 1
        finally:
            assert daemon.terminate() == 0, (tmp_path / "daemon.log").read_text(errors="replace")[-3000:]
            catalog.dispose()
