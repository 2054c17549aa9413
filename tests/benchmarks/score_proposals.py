"""How often ``listwatch sources new`` proposes a source that extracts exactly the right items, unedited.

    .venv/bin/python -m tests.benchmarks.score_proposals [--no-browser]

Two sets of listing pages:
- every demo shape: the demo site is served on loopback, each demo source's start URL goes through the same
  path as ``sources new`` (fetch, render in Chromium when the static page shows no list, propose); the
  right items are what the hand-written demo source extracts from the same page;
- the real saved pages of ``tests/corpus`` (origins in its README): the right items are its expected items;
- the held-out pages of ``tests/corpus_heldout`` (same layout, origins in its README), never looked at while
  tuning the proposer: a check that its rules are general. Reported separately.

A page counts when the proposed file, unedited, extracts exactly the right items: the same set of
(absolute URL, title) pairs. Dates are reported beside it (share of matched items whose date agrees on
its first 10 characters), as is whether the proposed pagination kind is the hand-written one (demo).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawlers.extractor import decode, extract_page
from crawlers.propose import propose
from crawlers.sources import Source, load_source
from scheduler.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
HELDOUT = ROOT / "tests" / "corpus_heldout"
DEMO_SOURCES = ROOT / "crawlers" / "demo" / "sources"


@dataclass
class Case:
    name: str
    exact: bool
    got: int
    want: int
    dates: float
    note: str = ""


def _pairs(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(str(i["fields"].get("url")), " ".join(str(i["fields"].get("title") or "").split())) for i in items}


def _dates(items: list[dict[str, Any]], want: dict[str, str]) -> float:
    matched = [i["fields"] for i in items if str(i["fields"].get("url")) in want and want[str(i["fields"]["url"])]]
    agree = sum(1 for f in matched if str(f.get("date") or "")[:10] == want[str(f["url"])][:10])
    return agree / len(matched) if matched else 1.0


def proposed_items(url: str, body: bytes, headers: dict[str, str], captured_at: datetime,
                   rendered: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    probe = Source(id="new", name="new", start_urls=[url], format="feed")
    text = decode(body, headers, probe, rendered).text
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    found = propose(url, text, content_type)
    if found is None:
        return [], None
    source = Source.model_validate({"id": "new", "name": "new", "start_urls": [url], **found.source})
    result = extract_page(source, url, "listing", headers, body, captured_at=captured_at, rendered=rendered)
    return result.items, found.source


def corpus_cases(folder: Path = CORPUS, label: str = "corpus") -> list[Case]:
    cases = []
    for path in sorted((folder / "expected").glob("*.json")):
        expected = json.loads(path.read_text(encoding="utf-8"))
        body = (folder / "pages" / expected["page"]).read_bytes()
        items, _ = proposed_items(expected["url"], body, expected.get("headers", {}),
                                  datetime.fromisoformat(expected["captured_at"]))
        want = {(i["url"], i["title"]) for i in expected["items"]}
        dates = _dates(items, {i["url"]: i.get("date") or "" for i in expected["items"]})
        cases.append(Case(f"{label} {path.stem}", _pairs(items) == want, len(items), len(want), dates))
    return cases


def demo_cases(browser: bool = True) -> list[Case]:
    from crawlers.demo.site import DemoSite
    from scheduler.cli.sources_new import _fetch, _render

    settings = Settings()
    cases = []
    with DemoSite(port=0) as site:
        os.environ["LISTWATCH_DEMO_URL"] = site.url
        for path in sorted(DEMO_SOURCES.glob("*.yaml")):
            written = load_source(path)
            url = written.start_urls[0]
            if written.render.mode == "browser" and not browser:
                continue
            body, headers = _fetch(url, settings)
            now = datetime.now(UTC)
            items, proposal = proposed_items(url, body, headers, now)
            rendered = False
            if proposal is None and browser:
                dom = _render(url, settings).encode("utf-8")
                headers, body, rendered = {"Content-Type": "text/html; charset=utf-8"}, dom, True
                items, proposal = proposed_items(url, body, headers, now, rendered=True)
            right = extract_page(written, url, "listing", headers, body, captured_at=now, rendered=rendered).items
            kind = ((proposal or {}).get("pagination") or {}).get("kind", "none")
            note = "pagination " + ("same" if kind == written.pagination.kind else f"{kind} (written: "
                                                                                   f"{written.pagination.kind})")
            dates = _dates(items, {str(i["fields"].get("url")): str(i["fields"].get("date") or "") for i in right})
            cases.append(Case(f"demo {written.id}", bool(right) and _pairs(items) == _pairs(right), len(items),
                              len(right), dates, note + (", rendered" if rendered else "")))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-browser", action="store_true", help="skip the browser-rendered demo shape")
    args = parser.parse_args(argv)
    cases = demo_cases(browser=not args.no_browser) + corpus_cases() + corpus_cases(HELDOUT, "heldout")
    print(f"{'page':46} {'exact':>5} {'got':>4} {'want':>4} {'dates':>6}")
    for c in cases:
        print(f"{c.name:46} {'yes' if c.exact else 'no':>5} {c.got:4} {c.want:4} {c.dates:6.2f}  {c.note}")
    for label, chosen in (("demo shapes", [c for c in cases if c.name.startswith("demo")]),
                          ("real saved pages (tuning)", [c for c in cases if c.name.startswith("corpus")]),
                          ("held-out real pages", [c for c in cases if c.name.startswith("heldout")]),
                          ("all", cases)):
        exact = sum(c.exact for c in chosen)
        print(f"{label}: {exact}/{len(chosen)} proposed files extract exactly the right items unedited "
              f"({exact / len(chosen):.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
