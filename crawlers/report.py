"""What a crawl did: pages by role and outcome, problems, challenges, completeness.

Written as ``run.json`` beside the run's items; the scheduler and the programme diff read it to
decide whether the crawl saw the whole listing (only a complete crawl may declare removals).

``warnings`` are problems that did not stop a page (a charset the bytes contradict, a field that matched
nothing on most items, a partial date). :attr:`CrawlReport.degraded` says why a crawl that saw the whole
listing still cannot be trusted: detail pages failing (a detail page answering 404/410 counts as failed
too, in ``pages_failed.detail`` and ``detail_gone``), charset conflicts no declaration settles (``charset-conflict``:
the text was read against every declared charset; a conflict between the header and the ``<meta>`` that the bytes
settle is a ``charset`` warning only), fields matching nothing on most items.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Role = str  # listing | detail | attachment | recheck
ROLES = ("listing", "detail", "attachment", "recheck")
PAGE_LIMIT = "page-limit"   # warning kind: the listing went on past pagination.max_pages (the crawl is incomplete)
EMPTY_LISTING = "empty-listing"   # warning kind: the first listing page is the documented empty listing
WARC_WRITE = "warc-write"   # the problem kind of a failed WARC write (disk full)


# What a run directory holds: the report, the items, the crawl's log (and the lease, scheduler/lease.py).
REPORT_FILE, ITEMS_FILE, LOG_FILE = "run.json", "items.jsonl", "crawl.log"


def runs_root(data_dir: Path) -> Path:
    """The folder holding every run's directory (``run_dir``)."""
    return data_dir / "runs"


def run_dir(data_dir: Path, source_id: str, run_id: str) -> Path:
    """Where one run keeps its report (``REPORT_FILE``), items, log and lease: the one layout."""
    return runs_root(data_dir) / source_id / run_id


@dataclass
class Problem:
    url: str
    role: Role
    kind: str        # http-404, timeout, too-large, challenge, dns, connection, redirect-loop, parse…
    message: str
    record: str | None = None    # the WARC record of the response that shows it (a challenge page…), if any


@dataclass
class CrawlReport:
    source_id: str
    run_id: str
    kind: str = "full"
    started: str = ""
    finished: str = ""
    pages_ok: dict[Role, int] = field(default_factory=lambda: dict.fromkeys(ROLES, 0))
    pages_failed: dict[Role, int] = field(default_factory=lambda: dict.fromkeys(ROLES, 0))
    items: int = 0
    listing_pages_expected: int | None = None
    pagination_finished: bool = True
    problems: list[Problem] = field(default_factory=list)
    challenges: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    detail_gone: int = 0
    revalidated: int = 0    # detail pages a conditional GET outside Scrapy found unchanged (crawlers.revalidate)
    warc_files: list[str] = field(default_factory=list)
    warc_bytes: int = 0
    items_path: str = ""
    stop_reason: str = ""

    @property
    def complete(self) -> bool:
        """True when the crawl saw the whole listing: no failed listing page, no challenge, all pages."""
        return (
            self.pages_failed["listing"] == 0
            and not self.challenges
            and self.pagination_finished
            and self.stop_reason in ("finished", "")
            and self.pages_ok["listing"] > 0
        )

    @property
    def degraded(self) -> list[str]:
        """Why this crawl's results are doubtful though its listing was read (empty: they are not)."""
        reasons = []
        failed, gone = self.pages_failed["detail"], self.detail_gone
        tried = failed + self.pages_ok["detail"]
        if failed - gone > 0 or (gone >= 2 and gone * 2 > tried):
            reasons.append(f"{failed} of {tried} detail pages failed ({gone} answered gone)")
        for kind, what in (("charset-conflict", "pages whose every declared charset the bytes contradict"),
                           ("empty-field", "pages where a field matched nothing on most items")):
            pages = {w.url for w in self.warnings if w.kind == kind}
            if pages:
                example = next(w.message for w in self.warnings if w.kind == kind)
                reasons.append(f"{len(pages)} {what} (e.g. {example})")
        return reasons

    @property
    def evidence_lost(self) -> bool:
        """True when WARC writing failed: what the crawl read after the failure has no capture in the archive."""
        return any(p.kind == WARC_WRITE for p in self.problems)

    def warc_closed(self, files: list[Path], bytes_written: int, error: OSError | None) -> None:
        """The run's closed WARC files, and why writing stopped if it did (the records before it were kept)."""
        self.warc_files = [str(p) for p in files]
        self.warc_bytes = bytes_written
        if error is not None:
            self.stop_reason = "WARC writing failed"
            self.problems.append(Problem("", "listing", WARC_WRITE, f"WARC writing failed: {error}"))

    def warn(self, url: str, role: Role, kind: str, message: str, *, record: str | None = None) -> None:
        """A problem that did not stop the page (kept to at most 500 entries)."""
        if len(self.warnings) < 500:
            self.warnings.append(Problem(url, role, kind, message, record))

    def problem(self, url: str, role: Role, kind: str, message: str, *, record: str | None = None) -> None:
        entry = Problem(url, role, kind, message, record)
        if kind == "challenge":
            self.challenges.append(entry)
        else:
            self.problems.append(entry)
        self.pages_failed[role] += 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete, "degraded": self.degraded}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> CrawlReport:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("complete", None)
        data.pop("degraded", None)
        for name in ("problems", "challenges", "warnings"):
            data[name] = [Problem(**p) for p in data.get(name, [])]
        return cls(**data)
