"""Regenerate the README's screenshots of the web interface (``infra/screenshots/*.png``).

Run it against a running ``listwatch serve`` (and ``listwatch replay`` for the replay page) over a filled
catalog, e.g. after ``listwatch demo --day 0``, ``--day 1`` and ``--day 2``::

    LISTWATCH_API__TOKEN=… .venv/bin/listwatch serve &
    .venv/bin/listwatch replay &
    .venv/bin/python infra/web_screenshots.py --base http://127.0.0.1:8470 --token …

Chromium is Debian's (``/usr/bin/chromium``; ``--chromium`` overrides). Chinese text needs ``fonts-noto-cjk``.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request
from pathlib import Path

OUT = Path(__file__).resolve().parent / "screenshots"
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _get_json(base: str, path: str, token: str) -> dict | list:  # type: ignore[type-arg]
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def pages(base: str, token: str) -> dict[str, str]:
    """name → path of each page worth a picture, picked from what the catalog holds."""
    changed = _get_json(base, "/api/events?kind=changed&per_page=1", token)
    events = changed["events"] if isinstance(changed, dict) else []
    shots = {"sources": "/sources", "programmes": "/programmes?q=" + urllib.parse.quote("研修"),
             "changes": "/changes", "charts": "/charts"}
    if events:
        shots["programme"] = f"/programmes/{events[0]['programme_id']}"
        before = (events[0].get("before_record_id") or "").strip("<>")
        if before:
            shots["replay"] = f"/capture/{before}"
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", default="http://127.0.0.1:8470", help="URL of `listwatch serve`")
    parser.add_argument("--token", required=True, help="api.token of that server")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=list(ARGS))
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      extra_http_headers={"Authorization": f"Bearer {args.token}"})
        page = context.new_page()
        for name, path in pages(args.base, args.token).items():
            page.goto(args.base + path, wait_until="load")
            page.wait_for_timeout(500 if name == "replay" else 50)
            target = args.out / f"{name}.png"
            page.screenshot(path=str(target), full_page=name != "replay")
            print(f"wrote {target}")
        browser.close()


if __name__ == "__main__":
    main()
