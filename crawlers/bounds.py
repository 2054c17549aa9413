"""Bounds on what a hostile page can make the crawler build in memory.

A JSON listing nested thousands of levels deep makes Python's parser (and every JSONPath walk over the
result) recurse until it fails somewhere uncontrolled; a page claiming 999,999,999 listing pages must not
make the crawler build a list of them (pagination generates page references lazily, and
``pagination.max_pages`` is bounded by ``crawlers.source_checks.MAX_PAGES``); a page of a million links
must not become a million items (each one a dict, a WARC metadata entry, a feed line and a catalog row).
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64            # real listing APIs nest a handful of levels
MAX_ITEMS_PER_PAGE = 10_000    # real listing pages show tens, an API page a few thousand at most


class TooDeep(ValueError):
    """JSON nested deeper than ``MAX_JSON_DEPTH``."""


def load_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses data nested deeper than ``max_depth`` (checked without recursion)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise TooDeep(f"the JSON is nested too deeply to read (more than {max_depth} levels)") from None
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise TooDeep(f"the JSON is nested more than {max_depth} levels deep; not read")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return data
