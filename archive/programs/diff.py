"""The programme diff, as pure functions: what one crawl says about a source's programmes.

Nothing here touches the database. :func:`diff_seen` compares the programmes a crawl listed with their
known state (new, changed, reappeared); :func:`diff_unseen` decides what the known programmes the crawl
did not list have become (missing, removed); :func:`assess` is the completeness guard that decides
whether the crawl may say anything about programmes it did not see, and :func:`vanish_guard` its backstop:
however complete a crawl looks, when more than ``VANISH_SHARE`` (half) of a source's known programmes
(active or missing, at least ``VANISH_MIN_KNOWN`` of them) would newly go unlisted at once, nothing is
declared missing or removed and a source-health event says why: a listing replaced wholesale is far more
often a broken page or selector than a real mass withdrawal. :func:`diff_crawl` composes them
over a whole known state (tests, small sources); ``archive.programs.store`` applies the same rules in
batches and with set-based SQL.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crawlers.keyparams import without_session
from crawlers.report import EMPTY_LISTING, PAGE_LIMIT

ACTIVE, MISSING, REMOVED = "active", "missing", "removed"
NEW, CHANGED, REAPPEARED = "new", "changed", "reappeared"
SOURCE_HEALTH = "source_health"
GONE_KINDS = ("http-404", "http-410", "soft-404", "redirect-to-index")
GONE_WORDS = {
    "http-404": "its detail page answers HTTP 404",
    "http-410": "its detail page answers HTTP 410 Gone",
    "soft-404": "its detail page is a 'page not found' page (soft 404)",
    "redirect-to-index": "its detail page redirects to an index page",
}


@dataclass(frozen=True)
class Known:
    """A programme as the archive knows it before this crawl."""

    key: str
    status: str = ACTIVE
    fields: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""
    missing_runs: int = 0
    last_record_id: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class Seen:
    """A programme as this crawl listed it. ``partial``: its detail page failed, so only the fields
    present are known (the others keep their previous values)."""

    key: str
    fields: Mapping[str, Any]
    title: str
    listing_record: str | None = None
    detail_record: str | None = None
    detail_url: str | None = None
    partial: bool = False
    page: int = 0

    @property
    def record(self) -> str | None:
        """The capture that best shows this programme's fields."""
        return self.detail_record if self.detail_record and not self.partial else self.listing_record


@dataclass(frozen=True)
class Recheck:
    """A known, unlisted programme whose detail page this crawl fetched again."""

    key: str
    gone: str | None
    record: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Change:
    """One event-to-be. ``fields`` is the programme's new full field set (new, changed, reappeared)."""

    kind: str
    key: str
    title: str
    summary: str
    changes: Mapping[str, list[Any]] = field(default_factory=dict)
    before_record: str | None = None
    after_record: str | None = None
    fields: Mapping[str, Any] | None = None
    reason: str = ""


@dataclass(frozen=True)
class Completeness:
    """``complete``: the crawl saw the whole listing, so it may declare programmes missing or removed.
    ``reasons``: why not (empty when complete, or a quick crawl with no problem); ``health``: raise a
    source-health event."""

    complete: bool
    reasons: tuple[str, ...] = ()

    @property
    def health(self) -> bool:
        return bool(self.reasons)


# -- completeness -------------------------------------------------------------------------------


def report_problems(report: Mapping[str, Any], *, quick: bool = False) -> list[str]:
    """Why a crawl report says the listing was not seen whole (failed pages, challenge, paging)."""
    reasons: list[str] = []
    challenges = report.get("challenges") or []
    if challenges:
        urls = ", ".join(str(c.get("url", "")) for c in challenges[:3])
        reasons.append(f"blocked: challenge page served ({len(challenges)}: {urls})")
    failed = int((report.get("pages_failed") or {}).get("listing", 0)) - len(
        [c for c in challenges if c.get("role") == "listing"])
    if failed > 0:
        listing = [p for p in report.get("problems") or [] if p.get("role") == "listing"]
        what = ", ".join(f"{p.get('url')} ({p.get('kind')})" for p in listing[:3])
        reasons.append(f"{failed} listing page(s) failed" + (f": {what}" if what else ""))
    if quick:
        return reasons
    if not report.get("pagination_finished", True):
        limit = [str(w.get("message")) for w in report.get("warnings") or [] if w.get("kind") == PAGE_LIMIT]
        reasons.append(limit[0] if limit else "pagination unfinished")
    stop = report.get("stop_reason") or ""
    if stop not in ("", "finished"):
        reasons.append(f"crawl stopped early ({stop})")
    if not int((report.get("pages_ok") or {}).get("listing", 0)) and not reasons:
        reasons.append("no listing page was fetched")
    return reasons


def assess(report: Mapping[str, Any], *, kind: str, items: int, recent: Sequence[int],
           min_ratio: float = 0.5) -> Completeness:
    """The completeness guard. ``recent``: item counts of the source's last complete full crawls."""
    if kind == "quick":
        return Completeness(False, tuple(report_problems(report, quick=True)))
    reasons = report_problems(report)
    if recent and not reasons and not (items == 0 and empty_listing(report)):
        median = statistics.median(recent)
        if items < min_ratio * median:
            reasons.append(f"far fewer items than usual: {items} against a median of {median:g} "
                           f"over the last {len(recent)} complete crawls")
    return Completeness(not reasons, tuple(reasons))


def empty_listing(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The documented empty listing (``crawlers.expect.EMPTY_LISTING``) this crawl read, if any: its
    warning, whose ``record`` is the evidence that the programmes are gone."""
    return next((w for w in report.get("warnings") or [] if w.get("kind") == EMPTY_LISTING), None)


VANISH_SHARE = 0.5        # more than this share of known programmes unlisted at once: refuse to declare
VANISH_MIN_KNOWN = 10     # ... for sources with at least this many known programmes (small ones swing)


def vanish_guard(completeness: Completeness, *, known: int, vanished: int, share: float = VANISH_SHARE,
                 min_known: int = VANISH_MIN_KNOWN) -> Completeness:
    """``completeness``, made incomplete when ``vanished`` of ``known`` programmes would go unlisted at once.

    ``known``: the source's active and missing programmes; ``vanished``: the active ones this crawl did not
    list. Applies whatever the item counts say (a listing of the usual size with other keys is caught too)."""
    if not completeness.complete or known < min_known or vanished <= share * known:
        return completeness
    reason = (f"{vanished} of the {known} known programmes vanished from the listing at once (more than "
              f"{share:.0%}); not declaring them missing: check the listing page and the source's selectors")
    return Completeness(False, (*completeness.reasons, reason))


# -- items --------------------------------------------------------------------------------------

BOOKKEEPING = frozenset({"position", "listing_page", "listing_url", "listing_record", "record", "text"})


def title_of(fields: Mapping[str, Any], key: str) -> str:
    for name in ("title", "detail_title", "name"):
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return key


def seen_from_item(item: Mapping[str, Any], ignore: Iterable[str] = ()) -> Seen:
    """A listed item (one line of ``items.jsonl``) as a :class:`Seen`."""
    dropped = BOOKKEEPING | set(ignore)
    fields = {k: v for k, v in (item.get("fields") or {}).items() if v is not None and k not in dropped}
    if "attachments" in item and "attachments" not in dropped:
        # URLs only, sorted: names ({"name", "url"}) stay in the capture's metadata, and a catalog kept
        # before names were extracted sees no change
        fields["attachments"] = sorted(a["url"] if isinstance(a, dict) else a for a in item["attachments"] or [])
    detail = item.get("detail") or {}
    partial = bool(detail) and bool(detail.get("error") or detail.get("gone")
                                    or int(detail.get("status") or 200) >= 400)
    key = str(item["key"])
    return Seen(key=key, fields=fields, title=title_of(fields, key), listing_record=item.get("listing_record"),
                detail_record=detail.get("record"), detail_url=detail.get("url"), partial=partial,
                page=int(item.get("listing_page") or 0))


def split_items(items: Iterable[Mapping[str, Any]], ignore: Iterable[str] = ()) -> tuple[list[Seen], list[Recheck]]:
    """Listed items (first occurrence of each key wins, unless a later one has its detail) and rechecks."""
    seen: dict[str, Seen] = {}
    rechecks: dict[str, Recheck] = {}
    for item in items:
        if item.get("recheck"):
            detail = item.get("detail") or {}
            rechecks[str(item["key"])] = Recheck(str(item["key"]), detail.get("gone"), detail.get("record"),
                                                 detail.get("url"))
            continue
        entry = seen_from_item(item, ignore)
        earlier = seen.get(entry.key)
        if earlier is None or (earlier.partial and not entry.partial):
            seen[entry.key] = entry
    return list(seen.values()), list(rechecks.values())


# -- the diff -----------------------------------------------------------------------------------


def field_changes(old: Mapping[str, Any], new: Mapping[str, Any], *, partial: bool = False) -> dict[str, list[Any]]:
    """``{field: [old, new]}``; a partial sighting only speaks about the fields it has."""
    names = set(new) if partial else set(old) | set(new)
    return {name: [old.get(name), new.get(name)] for name in sorted(names) if not same(old.get(name), new.get(name))}


def loose(link: str) -> str:
    """A link as compared for sameness: lower case, without a trailing slash (see ``programs.aliases``)."""
    return link.lower().rstrip("/")


def _is_link(text: str) -> bool:
    return text[:8].lower().startswith(("http://", "https://", "/"))


def same(old: Any, new: Any) -> bool:
    """Equal, or equal once links lose their session parameters (``crawlers.keyparams``): a detail link
    carrying this crawl's session id is the same link."""
    if old == new:
        return True
    if isinstance(old, str) and isinstance(new, str):
        before, after = without_session(old), without_session(new)
        # a link written in another case (IIS) or with a trailing slash: the same page (programs.aliases)
        return before == after or (_is_link(old) and _is_link(new) and loose(before) == loose(after))
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return all(same(a, b) for a, b in zip(old, new, strict=True))
    return False


def merged_fields(old: Mapping[str, Any], seen: Seen) -> dict[str, Any]:
    return {**old, **seen.fields} if seen.partial else dict(seen.fields)


def describe_changes(changes: Mapping[str, list[Any]]) -> str:
    def short(value: Any) -> str:
        text = "—" if value is None else str(value)
        return text if len(text) <= 60 else text[:57] + "…"

    return "; ".join(f"{name}: {short(old)} → {short(new)}" for name, (old, new) in changes.items())


def diff_seen(known: Mapping[str, Known], seen: Iterable[Seen]) -> list[Change]:
    """New, changed and reappeared programmes among those the crawl listed. Order and page do not matter."""
    out: list[Change] = []
    for item in seen:
        before = known.get(item.key)
        if before is None:
            out.append(Change(NEW, item.key, item.title, f"New: {item.title}", after_record=item.record,
                              fields=dict(item.fields)))
            continue
        fields = merged_fields(before.fields, item)
        if before.status in (MISSING, REMOVED):
            what = "removed" if before.status == REMOVED else "missing"
            out.append(Change(REAPPEARED, item.key, item.title, f"Back in the listing after being {what}",
                              before_record=before.last_record_id, after_record=item.record, fields=fields))
        changes = field_changes(before.fields, item.fields, partial=item.partial)
        if changes:
            out.append(Change(CHANGED, item.key, item.title, describe_changes(changes), changes=changes,
                              before_record=before.last_record_id, after_record=item.record, fields=fields))
    return out


def removal_reason(missing_runs: int, gone: str | None = None) -> str:
    if gone:
        return GONE_WORDS.get(gone, gone)
    return f"missing from {missing_runs} complete crawl(s) in a row"


def diff_unseen(unseen: Iterable[Known], *, rechecks: Mapping[str, Recheck], missing_runs_to_remove: int,
                evidence: str | None = None) -> list[Change]:
    """What the known, unlisted programmes become after a complete full crawl (missing or removed).

    ``evidence``: the record of the listing that lacks them (its first page)."""
    out: list[Change] = []
    for prog in unseen:
        if prog.status == REMOVED:
            continue
        check = rechecks.get(prog.key)
        runs = prog.missing_runs + 1
        if check is not None and check.gone:
            out.append(Change(REMOVED, prog.key, prog.title, f"Removed: {removal_reason(runs, check.gone)}",
                              before_record=prog.last_record_id, after_record=check.record or evidence,
                              reason=check.gone))
        elif runs >= missing_runs_to_remove:
            out.append(Change(REMOVED, prog.key, prog.title, f"Removed: {removal_reason(runs)}",
                              before_record=prog.last_record_id, after_record=evidence, reason="missing"))
        elif prog.status == ACTIVE:
            out.append(Change(MISSING, prog.key, prog.title, "Not in the listing of a complete crawl",
                              before_record=prog.last_record_id, after_record=evidence))
    return out


def evidence_record(seen: Sequence[Seen]) -> str | None:
    """The first listing page's record: what shows a programme is no longer listed."""
    pages = [s for s in seen if s.listing_record]
    return min(pages, key=lambda s: s.page).listing_record if pages else None


def diff_crawl(known: Mapping[str, Known], items: Iterable[Mapping[str, Any]], completeness: Completeness, *,
               kind: str = "full", missing_runs_to_remove: int = 2,
               empty: Mapping[str, Any] | None = None) -> list[Change]:
    """The whole diff of one crawl against a whole known state (pure; see ``store.apply_crawl``).

    ``empty``: the crawl's documented empty listing (:func:`empty_listing`), if it read one."""
    seen, rechecks = split_items(items)
    changes = diff_seen(known, seen)
    listed = {s.key for s in seen}
    if kind != "quick" and not (empty is not None and not seen):  # an empty listing shown as such is news
        current = [k for k in known.values() if k.status in (ACTIVE, MISSING)]
        completeness = vanish_guard(completeness, known=len(current),
                                    vanished=sum(k.status == ACTIVE and k.key not in listed for k in current))
    if completeness.complete and kind != "quick":
        unseen = [k for key, k in known.items() if key not in listed]
        changes += diff_unseen(unseen, rechecks={r.key: r for r in rechecks},
                               missing_runs_to_remove=missing_runs_to_remove,
                               evidence=evidence_record(seen) or (empty or {}).get("record"))
    if completeness.health:
        changes.append(health_change(completeness))
    return changes


GUARD_SUMMARY = "Incomplete crawl, no removals declared: "
DIFF_KINDS = (NEW, CHANGED, MISSING, REMOVED, REAPPEARED)   # with the guard's notes: what a diff writes


def health_change(completeness: Completeness) -> Change:
    return Change(SOURCE_HEALTH, "", "", GUARD_SUMMARY + "; ".join(completeness.reasons))
