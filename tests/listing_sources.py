"""Source files for listings shaped like the demo site's (``ul.list > li`` items, each a link, "共 N 页" pager), as
the tests and benchmarks write them: one builder, so a change to the source format is made in one place."""

from __future__ import annotations

from typing import Any

import yaml

LINK_FIELDS = {"title": "a::text", "url": {"css": "a::attr(href)", "type": "url"}}
DATE_FIELD = {"css": "span.date::text", "type": "date"}
PAGER_TOTAL = {"css": ".pager", "regex": r"共\s*(\d+)\s*页", "type": "int"}


def listing_source(source_id: str, name: str, start_url: str, *, pages: int | None = None, dated: bool = False,
                   detail: dict[str, Any] | None = None, concurrency: int = 4, robots: bool = False,
                   limits: dict[str, Any] | None = None, schedule: dict[str, Any] | None = None) -> str:
    """The YAML of a source listing ``ul.list > li`` links from ``start_url``. ``pages``: template pagination
    (``index_{n}.html``, the total read from the pager) up to that many pages; ``dated``: each item's
    ``span.date`` too; ``limits`` defaults to 5 pages."""
    source: dict[str, Any] = {"id": source_id, "name": name, "start_urls": [start_url]}
    if pages is not None:
        source["pagination"] = {"kind": "template", "template": "index_{n}.html", "total": PAGER_TOTAL,
                                "max_pages": pages}
    source["items"] = {"selector": "ul.list > li", "key": "url",
                       "fields": {**LINK_FIELDS, **({"date": DATE_FIELD} if dated else {})}}
    if detail is not None:
        source["detail"] = detail
    source["politeness"] = {"delay": 0, "concurrency": concurrency, "obey_robots": robots}
    source["limits"] = limits or {"max_pages": 5}
    if schedule is not None:
        source["schedule"] = schedule
    return yaml.safe_dump(source, allow_unicode=True, sort_keys=False)
