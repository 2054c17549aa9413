"""The programme diff as pure functions: tables of previous state + crawl items → events."""

from __future__ import annotations

from typing import Any

import pytest

from archive.programs.diff import Completeness, Known, assess, diff_crawl

COMPLETE = Completeness(True)
REPORT_OK = {"pages_ok": {"listing": 3}, "pages_failed": {"listing": 0}, "pagination_finished": True,
             "stop_reason": "finished", "problems": [], "challenges": []}


def item(key: str, page: int = 1, position: int = 0, **fields: Any) -> dict[str, Any]:
    return {"source": "s", "key": key, "fields": {"title": f"T{key}", **fields}, "listing_url": f"http://x/{page}",
            "listing_page": page, "position": position, "listing_record": f"<urn:uuid:l{page}>",
            "detail": {"url": f"http://x/d/{key}", "status": 200, "record": f"<urn:uuid:d{key}>", "gone": None,
                       "text": f"text of {key} on page {page}"}}


def known(key: str, status: str = "active", missing_runs: int = 0, **fields: Any) -> Known:
    return Known(key, status, {"title": f"T{key}", **fields}, f"T{key}", missing_runs, f"<urn:uuid:old{key}>")


def recheck(key: str, gone: str | None) -> dict[str, Any]:
    return {"source": "s", "key": key, "recheck": True,
            "detail": {"url": f"http://x/d/{key}", "status": 200, "record": f"<urn:uuid:r{key}>", "gone": gone}}


def kinds(changes: list[Any]) -> list[tuple[str, str]]:
    return sorted((c.kind, c.key) for c in changes)


CASES = [
    ("new", {}, [item("a")], [("new", "a")]),
    ("unchanged", {"a": known("a")}, [item("a")], []),
    ("changed field", {"a": known("a", deadline="2026-03-01")}, [item("a", deadline="2026-03-15")],
     [("changed", "a")]),
    ("reordered", {"a": known("a"), "b": known("b")}, [item("b", position=0), item("a", position=1)], []),
    ("page shift", {"a": known("a"), "b": known("b")}, [item("a", page=2, position=9), item("b", page=3)], []),
    ("missing", {"a": known("a"), "b": known("b")}, [item("a")], [("missing", "b")]),
    ("still missing", {"a": known("a"), "b": known("b", "missing", 0)}, [item("a")], []),
    ("removed after N", {"a": known("a"), "b": known("b", "missing", 1)}, [item("a")], [("removed", "b")]),
    ("removed: gone detail", {"a": known("a"), "b": known("b", "missing", 0)}, [item("a"), recheck("b", "http-404")],
     [("removed", "b")]),
    ("soft 404", {"a": known("a"), "b": known("b", "missing", 0)}, [item("a"), recheck("b", "soft-404")],
     [("removed", "b")]),
    ("delisted, page still there", {"a": known("a"), "b": known("b", "missing", 0)},
     [item("a"), recheck("b", None)], []),
    ("reappeared", {"a": known("a", "missing", 1)}, [item("a")], [("reappeared", "a")]),
    ("reappeared after removal", {"a": known("a", "removed", 2)}, [item("a")], [("reappeared", "a")]),
    ("removed stays removed", {"a": known("a"), "b": known("b", "removed", 2)}, [item("a")], []),
]


@pytest.mark.parametrize(("name", "before", "items", "expected"), CASES, ids=[c[0] for c in CASES])
def test_diff_of_a_complete_crawl(name: str, before: dict[str, Known], items: list[dict[str, Any]],
                                  expected: list[tuple[str, str]]) -> None:
    assert kinds(diff_crawl(before, items, COMPLETE, missing_runs_to_remove=2)) == expected


def test_changed_names_each_field_old_and_new_and_the_records() -> None:
    before = {"a": known("a", deadline="2026-03-01", location="北京市")}
    [change] = diff_crawl(before, [item("a", deadline="2026-03-15", location="上海市")], COMPLETE)
    assert change.changes == {"deadline": ["2026-03-01", "2026-03-15"], "location": ["北京市", "上海市"]}
    assert change.before_record == "<urn:uuid:olda>" and change.after_record == "<urn:uuid:da>"
    assert "deadline: 2026-03-01 → 2026-03-15" in change.summary


def test_a_failed_detail_page_changes_only_the_listing_fields() -> None:
    before = {"a": known("a", deadline="2026-03-01")}
    failed = {**item("a"), "detail": {"url": "http://x/d/a", "status": 503, "error": "http-503", "gone": None}}
    assert diff_crawl(before, [failed], COMPLETE) == []


@pytest.mark.parametrize(("report", "why"), [
    ({**REPORT_OK, "pages_failed": {"listing": 1}, "pagination_finished": False,
      "problems": [{"url": "http://x/2", "role": "listing", "kind": "http-503", "message": ""}]}, "failed"),
    ({**REPORT_OK, "pages_failed": {"listing": 1}, "pagination_finished": False,
      "challenges": [{"url": "http://x/1", "role": "listing", "kind": "challenge", "message": ""}]}, "blocked"),
    ({**REPORT_OK, "pagination_finished": False}, "pagination unfinished"),
])
def test_an_incomplete_crawl_adds_and_changes_but_never_removes(report: dict[str, Any], why: str) -> None:
    completeness = assess(report, kind="full", items=1, recent=[])
    assert not completeness.complete and why in "; ".join(completeness.reasons)
    before = {"a": known("a", deadline="1"), "b": known("b"), "c": known("c", "missing", 5)}
    items = [item("a", deadline="2"), item("n"), recheck("c", "http-404")]
    assert kinds(diff_crawl(before, items, completeness)) == [("changed", "a"), ("new", "n"), ("source_health", "")]


def test_far_fewer_items_than_recent_complete_crawls_is_incomplete() -> None:
    assert assess(REPORT_OK, kind="full", items=40, recent=[100, 98, 101]).reasons[0].startswith("far fewer")
    assert assess(REPORT_OK, kind="full", items=60, recent=[100, 98, 101]).complete
    assert assess(REPORT_OK, kind="full", items=60, recent=[100, 98, 101], min_ratio=0.7).health


def test_a_quick_crawl_is_partial_by_design_without_a_health_event() -> None:
    partial = {**REPORT_OK, "pagination_finished": False}
    completeness = assess(partial, kind="quick", items=10, recent=[100])
    assert not completeness.complete and not completeness.health
    before = {"a": known("a"), "b": known("b", deadline="1")}
    got = diff_crawl(before, [item("b", deadline="2"), item("n")], completeness, kind="quick")
    assert kinds(got) == [("changed", "b"), ("new", "n")]
    blocked = {**partial, "challenges": [{"url": "u", "role": "listing", "kind": "challenge", "message": ""}]}
    assert assess(blocked, kind="quick", items=0, recent=[]).health
