"""Score listwatch's extraction on the real-page corpus (``tests/corpus``).

    .venv/bin/python -m tests.benchmarks.score_corpus [--json] [--page ID]

Each page in ``tests/corpus/pages`` is a listing page saved in a public repository (origin and licence in
``tests/corpus/README.md``). ``expected/ID.json`` holds the items written by reading the page, the URL the
page was served from, when it was captured and the headers it is replayed with; ``sources/ID.yaml`` is the
source file a careful user would write for it. The page's original bytes go through listwatch's one
extraction path (``crawlers.extractor.extract_page``, as the spider and ``programs reprocess`` call it, with
the page's capture time), and extracted items are matched to expected ones by absolute URL.

Printed per page and overall (items summed over all pages):
- recall: matched expected items / expected items; precision: matched / extracted items;
- titles exact: matched items whose title equals the expected one (whitespace collapsed);
- dates exact: matched items with an expected date whose extracted date agrees on its first 10 characters
  (the calendar day; a partial ``YYYY-MM`` or ``YYYY`` must stay partial);
- mojibake: extracted titles with U+FFFD or text that is UTF-8 read as a single-byte charset.
Under each page: its misses, then what extraction reported (``problems``: charset conflicts, partial dates).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crawlers.extractor import extract_page
from crawlers.sources import load_source

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
# UTF-8 lead bytes read as latin-1/cp1252 show up as these pairs; none occurs in real Chinese or English titles.
_CP1252_HIGH = "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u02c6\u02dc\u20ac\u2122\u2018-\u203a"
_MOJIBAKE = re.compile(f"[\u00c2-\u00ef][\u0080-\u00bf{_CP1252_HIGH}]")


@dataclass
class PageScore:
    page: str
    expected: int
    extracted: int
    matched: int
    titles_exact: int
    dates_expected: int
    dates_exact: int
    mojibake: int
    problem: str | None
    misses: list[str]
    problems: list[str]  # what extraction reported without stopping (charset conflicts, partial dates…)

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.extracted if self.extracted else (1.0 if not self.expected else 0.0)


def is_mojibake(text: str) -> bool:
    return "\ufffd" in text or bool(_MOJIBAKE.search(text))


def _norm(text: Any) -> str:
    return " ".join(str(text or "").split())


def score_page(page_id: str) -> PageScore:
    expected = json.loads((CORPUS / "expected" / f"{page_id}.json").read_text(encoding="utf-8"))
    source = load_source(CORPUS / "sources" / f"{page_id}.yaml")
    body = (CORPUS / "pages" / expected["page"]).read_bytes()
    captured_at = datetime.fromisoformat(expected["captured_at"])
    result = extract_page(source, expected["url"], "listing", expected.get("headers", {}), body,
                          captured_at=captured_at)
    got = [item["fields"] for item in result.items]
    unmatched: dict[str, list[dict[str, Any]]] = {}
    for fields in got:
        unmatched.setdefault(str(fields.get("url") or ""), []).append(fields)
    matched = titles = dates_expected = dates = 0
    misses: list[str] = []
    for want in expected["items"]:
        candidates = unmatched.get(want["url"]) or []
        if not candidates:
            misses.append(f"missing {want['url']} ({want['title']})")
            continue
        fields = candidates.pop(0)
        matched += 1
        if _norm(fields.get("title")) == _norm(want["title"]):
            titles += 1
        else:
            misses.append(f"title {fields.get('title')!r} != {want['title']!r}")
        if want.get("date"):
            dates_expected += 1
            if str(fields.get("date") or "")[:10] == want["date"][:10]:
                dates += 1
            else:
                misses.append(f"date {fields.get('date')!r} != {want['date']!r} ({want['title']})")
    extra = Counter(url for url, rest in unmatched.items() for _ in rest)
    misses.extend(f"unexpected {url}" for url in extra)
    mojibake = sum(1 for fields in got if is_mojibake(str(fields.get("title") or "")))
    problem = result.problem or result.challenge
    return PageScore(page_id, len(expected["items"]), len(got), matched, titles, dates_expected, dates, mojibake,
                     problem, misses, list(result.problems))


def page_ids() -> list[str]:
    return sorted(p.stem for p in (CORPUS / "expected").glob("*.json"))


def overall(scores: list[PageScore]) -> dict[str, float | int]:
    expected = sum(s.expected for s in scores)
    extracted = sum(s.extracted for s in scores)
    matched = sum(s.matched for s in scores)
    dates_expected = sum(s.dates_expected for s in scores)
    return {
        "pages": len(scores),
        "items": expected,
        "recall": matched / expected if expected else 1.0,
        "precision": matched / extracted if extracted else 0.0,
        "titles_exact": sum(s.titles_exact for s in scores) / matched if matched else 0.0,
        "dates_exact": sum(s.dates_exact for s in scores) / dates_expected if dates_expected else 1.0,
        "mojibake": sum(s.mojibake for s in scores),
    }


def _row(name: str, recall: float, precision: float, titles: float, dates: float, mojibake: int, items: int) -> str:
    return f"{name:32} {items:5} {recall:7.3f} {precision:9.3f} {titles:7.3f} {dates:6.3f} {mojibake:8}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--page", action="append", help="score only this page id (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    scores = [score_page(page) for page in (args.page or page_ids())]
    total = overall(scores)
    if args.json:
        print(json.dumps({"pages": [asdict(s) | {"recall": s.recall, "precision": s.precision} for s in scores],
                          "overall": total}, ensure_ascii=False, indent=1))
        return 0
    print(f"{'page':32} {'items':>5} {'recall':>7} {'precision':>9} {'titles':>7} {'dates':>6} {'mojibake':>8}")
    for s in scores:
        titles = s.titles_exact / s.matched if s.matched else 0.0
        dates = s.dates_exact / s.dates_expected if s.dates_expected else 1.0
        print(_row(s.page, s.recall, s.precision, titles, dates, s.mojibake, s.expected)
              + (f"  problem: {s.problem}" if s.problem else ""))
        for miss in s.misses[: None if args.verbose else 3]:
            print(f"    {miss}")
        for reported in s.problems[: None if args.verbose else 1]:
            print(f"    reported: {reported}")
    print(_row("OVERALL", float(total["recall"]), float(total["precision"]), float(total["titles_exact"]),
               float(total["dates_exact"]), int(total["mojibake"]), int(total["items"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
