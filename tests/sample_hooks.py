"""Source hooks used by tests: one that rewrites items, one that fails."""

from typing import Any


def broken(response: Any, items: list[dict[str, Any]], source: Any) -> list[dict[str, Any]]:
    raise RuntimeError("boom")
def upper(response: Any, items: list[dict[str, Any]], source: Any) -> list[dict[str, Any]]:
    for i in items:
        i["title"] = "HOOK:" + (i.get("title") or "")
    return items
