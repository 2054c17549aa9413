"""Source hooks: ``module:function`` post-processing a listing page's items.

Signature: ``hook(response: scrapy.http.TextResponse, items: list[dict], source: Source) -> list[dict]``.
``response`` is the page as captured (live or from the archive: the same for both), ``items`` the fields
the rules extracted, one dict per item node in page order; the hook returns the items to keep (it may
change, add or drop fields and items). Example (``tests/sample_hooks.py``)::

    def upper(response, items, source):
        for item in items:
            item["title"] = "HOOK:" + (item.get("title") or "")
        return items
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

Hook = Callable[[Any, list[dict[str, Any]], Any], list[dict[str, Any]]]


@lru_cache(maxsize=64)
def load_hook(spec: str) -> Hook:
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"hook {spec!r} cannot be loaded: {exc}") from None
