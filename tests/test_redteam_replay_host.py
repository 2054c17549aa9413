"""Replay and the web UI on one host name, in real Chromium: a hostile archived page against a signed-in user.

``listwatch replay`` (pywb) runs an archived site's own scripts on its origin; by default that is the same host
name as ``listwatch serve`` on another port. Cookies are not kept apart by port and such an origin is
*same-site*, so ``SameSite=Lax`` sends the session cookie with that page's cross-origin forms and frames. A
page on another 127.0.0.1 port (a hostile site's server, standing in for replay) tries:

- auto-submitted forms to every state-changing route (add a subscription, sign out): refused, no CSRF token;
- framing the signed-in UI to trick a click on a button (clickjacking): the UI refuses to be framed;
- cookies that shadow the session cookie (cookie tossing): the real session still signs the user in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.archive_tools import free_port
from tests.hostile import HostileSite
from tests.web_support import running

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytest_plugins = ("tests.web_support",)   # fixture: browser
pytestmark = [pytest.mark.browser]
TOKEN = "replay-host-token-0123"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``listwatch serve`` over an empty catalog, sign-in by token."""
    tmp = tmp_path_factory.mktemp("replay-host")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(tmp / "data"), "LISTWATCH_SETTINGS": str(tmp / "none.yaml"),
           "LISTWATCH_API__TOKEN": TOKEN, "LISTWATCH_API__PORT": str(port), "LISTWATCH_API__PUBLIC_URL": url}
    with running(["serve"], env, f"{url}/healthz", tmp / "serve.log"):
        yield url


@pytest.fixture()
def hostile() -> Iterator[HostileSite]:
    with HostileSite() as site:
        yield site


def signed_in(browser: Browser, web: str, then: str = "/subscriptions", token: str = TOKEN) -> Page:
    """A fresh browser context signed in to ``listwatch serve`` at ``web`` with ``token``, left at ``then``."""
    page = browser.new_context().new_page()
    page.goto(f"{web}/login?next={then}")
    page.fill("#token", token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{web}{then}")
    return page


def subscription_names(page: Page, web: str) -> list[str]:
    return [s["name"] for s in page.request.get(f"{web}/api/subscriptions").json()]


def auto_submit(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (f'<form id="f" method="post" action="{action}">{inputs}</form>'
            "<script>document.getElementById('f').submit()</script>")


def test_forms_auto_submitted_from_another_port_change_nothing(browser: Browser, web: str,
                                                               hostile: HostileSite) -> None:
    page = signed_in(browser, web)
    hostile.page("/add.html", auto_submit(f"{web}/subscriptions", {"name": "tossed", "target": "json://127.0.0.1:9/"}))
    hostile.page("/out.html", auto_submit(f"{web}/logout", {}))
    for path in ("/add.html", "/out.html"):
        with page.expect_navigation(url=lambda u: u.startswith(web)):
            page.goto(hostile.url + path)
        assert "Refused" in page.title()
    assert "tossed" not in subscription_names(page, web)
    page.goto(f"{web}/subscriptions")                      # still signed in: the sign-out form was refused too
    assert page.url == f"{web}/subscriptions" and page.locator("input[name=csrf]").count() > 0
    page.context.close()


def test_a_page_on_another_port_cannot_frame_the_signed_in_ui(browser: Browser, web: str,
                                                             hostile: HostileSite) -> None:
    page = signed_in(browser, web)
    hostile.page("/frame.html", f'<iframe id="ui" src="{web}/subscriptions" width="800" height="600"></iframe>')
    page.goto(hostile.url + "/frame.html")
    page.wait_for_load_state("load")
    frame = page.frame_locator("#ui")
    # Framed, the signed-in page would show its forms (with their CSRF token) under a click-jacking overlay.
    assert frame.locator("input[name=csrf]").count() == 0
    assert frame.get_by_text("Alert subscriptions").count() == 0
    page.context.close()


@pytest.mark.parametrize("path", ["/", "/subscriptions"])
def test_a_cookie_tossed_from_another_port_does_not_sign_the_user_out(browser: Browser, web: str,
                                                                      hostile: HostileSite, path: str) -> None:
    page = signed_in(browser, web)
    hostile.page("/toss.html", f'<script>document.cookie = "listwatch_session=junk; path={path}"</script>')
    page.goto(hostile.url + "/toss.html")
    assert "listwatch_session" not in page.evaluate("document.cookie")    # HttpOnly: the page cannot read it
    values = [c["value"] for c in page.context.cookies(f"{web}/subscriptions") if c["name"] == "listwatch_session"]
    # Chromium keeps a script from overwriting the HttpOnly cookie at its own path; at a longer one both are sent
    assert "junk" in values if path != "/" else "junk" not in values
    page.goto(f"{web}/subscriptions")
    assert page.url == f"{web}/subscriptions" and page.locator("input[name=csrf]").count() > 0
    page.context.close()
