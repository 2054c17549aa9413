"""A crawl's ``items.jsonl``, written by the spider itself instead of through Scrapy's item machinery.

An item yielded to Scrapy goes through every spider middleware's output layer, the scraper's per-output task
queue, the (empty) item pipeline, ``item_scraped`` and the feed exporter: more CPU than an unchanged detail page
(a 304 whose earlier extraction is reused) costs listwatch otherwise. Nothing here waits on an item (the
pipeline reads the file after the crawl), so the spider writes each item as Scrapy's ``jsonlines`` feed would
(``ScrapyJSONEncoder``, UTF-8, one object per line: the same bytes) and yields only requests.

Without a run directory (a plain ``scrapy crawl listing``) the spider yields its items to Scrapy as before, so
Scrapy's own feed options (``-o``) still apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from scrapy.utils.serialize import ScrapyJSONEncoder


class ItemsFile:
    """``items.jsonl`` of one crawl: opened on the first item, created empty at :meth:`close` if none came
    (as Scrapy's feed does), so the pipeline always finds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._encoder = ScrapyJSONEncoder(ensure_ascii=False)   # what the jsonlines exporter uses for utf8
        self._file: IO[bytes] | None = None

    def write(self, item: dict[str, Any]) -> None:
        if self._file is None:
            self._file = self._open()
        self._file.write(self._encoder.encode(item).encode("utf-8") + b"\n")
        self.count += 1

    def close(self) -> None:
        if self._file is None:
            self._file = self._open()
        self._file.close()

    def _open(self) -> IO[bytes]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.path.open("wb")
