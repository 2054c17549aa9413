"""Capture queries compatible with pywb's CDX server API, answered from the catalog.

Parameters follow pywb (``docs/manual/cdxserver_api.rst``): ``url`` (``*`` suffix = prefix, ``*.host`` = domain),
``matchType`` exact|prefix|host|domain, ``from``/``to`` (1–14 digit timestamps padded to the lower / upper
bound, inclusive), ``limit``, ``sort`` reverse|closest with ``closest=<ts>``, repeated ``filter`` of the form
``[!][=|~]field:expr`` and ``fl`` (fields to output); ``output`` cdxj (default), json (NDJSON) or text.

Lookups use SURT key ranges on ``ix_captures_surt_ts`` (pywb's ``calc_search_range``), so exact, prefix,
host and domain queries are index range scans whatever the catalog's size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, select

from archive.catalog import Catalog
from archive.catalog.models import Capture, WarcFile
from archive.indexer import safe_surt

MATCH_TYPES = ("exact", "prefix", "host", "domain")
OUTPUTS = ("cdxj", "json", "text")
FIELDS = ("urlkey", "timestamp", "url", "mime", "status", "digest", "length", "offset", "filename",
          "record_id", "type", "source")
URN_KINDS = re.compile(r"^urn:(dom|screenshot|items|text):(https?://.+)$")
_DIGITS = re.compile(r"^\d{1,14}$")
_FILTER = re.compile(r"^(?P<neg>!?)(?P<op>[=~]?)(?P<field>[a-z_]+):(?P<expr>.*)$", re.S)
MAX_URL = 4096


class QueryError(ValueError):
    """A query parameter is malformed; the message says which and why (HTTP 400)."""


@dataclass(frozen=True)
class CdxEntry:
    """One capture as the CDX API shows it (pywb field names, plus our record id, type and source)."""

    urlkey: str
    timestamp: str          # 14 digits
    url: str
    mime: str
    status: str
    digest: str
    length: int
    offset: int
    filename: str           # the storage key of the WARC
    record_id: str
    type: str
    source: str
    micros: str = ""        # sub-second digits of WARC-Date (not output)

    def fields(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("micros")
        if self.type == "revisit":
            data["mime"] = "warc/revisit"
        return data

    @property
    def moment(self) -> datetime:
        return ts_datetime(self.timestamp + self.micros)


# ------------------------------------------------------------------------------------------------ validation


def check_url(url: str) -> str:
    """An http(s) URL (scheme-less ``example.com/x`` means http) or ``urn:<kind>:<http url>``; else QueryError."""
    url = (url or "").strip()
    if not url:
        raise QueryError("url is required")
    if len(url) > MAX_URL or any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise QueryError("url is too long or contains spaces or control characters")
    inner = URN_KINDS.match(url)
    target = inner.group(2) if inner else url
    if "://" not in target and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target):
        target = "http://" + target
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise QueryError(f"malformed url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise QueryError(f"unsupported url scheme {parts.scheme!r}: only http(s) captures are archived")
    if not parts.hostname or ".." in parts.hostname or parts.hostname.startswith("."):
        raise QueryError(f"malformed url {url!r}: no valid host")
    return f"urn:{inner.group(1)}:{target}" if inner else target


_ISO = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d+)?)?)?)?)?)?"
                  r"(Z|[+-]\d{2}:?\d{2})?$")


def iso_digits(ts: str) -> str:
    """An ISO 8601 date or time (``2026-11-30``, ``2026-11-30T08:00+08:00``) as CDX digits (UTC);
    anything else is returned unchanged."""
    match = _ISO.match(ts.strip())
    if not match or not ("-" in ts or match.group(7)):
        return ts
    zone = match.group(7)
    if zone and zone != "Z" and match.group(4):
        moment = datetime.fromisoformat(ts.strip()).astimezone(UTC)
        return moment.strftime("%Y%m%d%H%M%S")[: len("".join(g for g in match.groups()[:6] if g))]
    return "".join(g for g in match.groups()[:6] if g)


def pad_timestamp(ts: str, *, upper: bool, name: str) -> str:
    """1–14 digits or an ISO 8601 date/time → 14 digits, padded to the start (``from``) or end (``to``)."""
    given, ts = ts, iso_digits(ts or "")
    if not _DIGITS.match(ts):
        raise QueryError(f"{name} must be a date like 2026-11-30 or 2026-11-30T08:00Z, or 1 to 14 digits "
                         f"(YYYY[MM[DD[hh[mm[ss]]]]]), got {given!r}")
    if not upper:
        padded = (ts + "00000000000000")[:14]
        padded = padded[:4] + (padded[4:6] if padded[4:6] != "00" else "01") + \
            (padded[6:8] if padded[6:8] != "00" else "01") + padded[8:]
    else:
        pad_timestamp(ts, upper=False, name=name)   # the given digits must make a valid date on their own
        padded = (ts + "99999999999999")[:14]
        month = min(int(padded[4:6]), 12)
        last_day = _last_day(int(padded[:4]), month)
        padded = (padded[:4] + f"{month:02d}" + f"{min(int(padded[6:8]), last_day):02d}"
                  + f"{min(int(padded[8:10]), 23):02d}{min(int(padded[10:12]), 59):02d}"
                  + f"{min(int(padded[12:14]), 59):02d}")
    try:
        ts_datetime(padded)
    except ValueError:
        raise QueryError(f"{name} is not a valid date/time: {given!r}") from None
    return padded


def _last_day(year: int, month: int) -> int:
    nxt = datetime(year + (month == 12), month % 12 + 1, 1)
    return (nxt - datetime(year, month, 1)).days


def ts_datetime(ts: str) -> datetime:
    """``YYYYmmddHHMMSS[micros]`` → aware UTC datetime."""
    base = datetime.strptime(ts[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    micros = ts[14:20]
    return base.replace(microsecond=int(micros.ljust(6, "0"))) if micros else base


def check_range(from_: str | None, to: str | None) -> tuple[str | None, str | None]:
    lo = pad_timestamp(from_, upper=False, name="from") if from_ else None
    hi = pad_timestamp(to, upper=True, name="to") if to else None
    if lo and hi and lo > hi:
        raise QueryError(f"from ({from_}) is after to ({to})")
    return lo, hi


# ------------------------------------------------------------------------------------------------ ranges


def search_range(url: str, match: str) -> tuple[str, str]:
    """SURT key range [start, end) for a match type, as pywb's ``calc_search_range``."""
    if match not in MATCH_TYPES:
        raise QueryError(f"matchType must be one of {', '.join(MATCH_TYPES)}, got {match!r}")
    key = safe_surt(url)
    if match == "exact":
        return key, key + "!"
    if match == "prefix":
        if url.endswith("/") and not key.endswith("/"):
            key += "/"
        if url.endswith("?") and not key.endswith("?"):
            key += "?"
        return key, key[:-1] + chr(ord(key[-1]) + 1)
    host = key.split(")/")[0]
    if match == "host":
        return host + ")/", host + "*"
    return (host + "," if "," not in host else host + ")/"), host + "-"


def split_wildcards(url: str, match: str | None) -> tuple[str, str]:
    """``http://x/path/*`` → prefix; ``*.example.com`` → domain (pywb's shortcuts)."""
    if url.startswith("*."):
        return url[2:], "domain"
    if url.endswith("*"):
        return url[:-1], "prefix"
    return url, match or "exact"


# ------------------------------------------------------------------------------------------------ filters


MAX_FILTER_PATTERN = 1000      # characters; RE2 bounds the time, this bounds the compiled program's size


def compile_filter(expr: str) -> Any:
    """A ``~`` filter's regex compiled with RE2 (google-re2): matching time grows linearly with the input,
    so no pattern (``(a+)+$`` and the like) can make a query hang. RE2 has no backreferences or lookaround."""
    import re2

    if len(expr) > MAX_FILTER_PATTERN:
        raise QueryError(f"filter regex too long ({len(expr)} characters, at most {MAX_FILTER_PATTERN})")
    options = re2.Options()
    options.max_mem = 1 << 20   # a pattern that needs more is refused (re2.error), not run slowly
    options.log_errors = False
    try:
        return re2.compile(expr, options)
    except re2.error as exc:
        raise QueryError(f"bad filter regex {expr!r}: {exc} (RE2 syntax: no backreferences or lookaround)") from None


@dataclass(frozen=True)
class CdxFilter:
    field: str
    op: str          # "" contains, "=" exact, "~" regex (match at start)
    expr: str
    negate: bool
    pattern: Any = None          # a compiled RE2 pattern (linear time: a filter cannot freeze the API)

    @classmethod
    def parse(cls, text: str) -> CdxFilter:
        m = _FILTER.match(text)
        if not m or m["field"] not in FIELDS:
            raise QueryError(f"bad filter {text!r}: use [!][=|~]FIELD:EXPR with FIELD one of {', '.join(FIELDS)}")
        pattern = compile_filter(m["expr"]) if m["op"] == "~" else None
        return cls(m["field"], m["op"], m["expr"], bool(m["neg"]), pattern)

    def __call__(self, fields: Mapping[str, Any]) -> bool:
        value = str(fields.get(self.field, ""))
        if self.op == "=":
            hit = value == self.expr
        elif self.pattern is not None:
            hit = self.pattern.match(value) is not None
        else:
            hit = self.expr in value
        return hit != self.negate


# ------------------------------------------------------------------------------------------------ query


def _columns() -> Select[Any]:
    c = Capture
    return select(c.surt, c.timestamp, c.url, c.mime, c.status, c.payload_digest, c.length, c.offset,
                  WarcFile.key, c.record_id, c.record_type, c.source_id).join(  # type: ignore[return-value]
        WarcFile, WarcFile.id == c.warc_file_id)


def _entry(row: Sequence[Any]) -> CdxEntry:
    ts = str(row[1])
    return CdxEntry(urlkey=row[0], timestamp=ts[:14], url=row[2], mime=row[3] or "",
                    status="" if row[4] is None else str(row[4]), digest=row[5] or "", length=int(row[6]),
                    offset=int(row[7]), filename=row[8], record_id=row[9], type=row[10], source=row[11],
                    micros=ts[14:])


def query_captures(
    catalog: Catalog, url: str, *, match: str = "exact", from_: str | None = None, to: str | None = None,
    limit: int | None = None, sort: str | None = None, closest: str | None = None,
    filters: Iterable[str | CdxFilter] = (), source_id: str | None = None,
    record_types: Iterable[str] | None = None,
) -> list[CdxEntry]:
    """Captures of ``url`` (SURT order, then time), as pywb's CDX server selects them."""
    url, match = split_wildcards(url.strip(), match)
    url = check_url(url)
    lo, hi = check_range(from_, to)
    if limit is not None and limit < 1:
        raise QueryError("limit must be a positive integer")
    if sort not in (None, "", "reverse", "closest"):
        raise QueryError(f"sort must be reverse or closest, got {sort!r}")
    target = pad_timestamp(closest, upper=False, name="closest") if closest else None
    if sort == "closest" and not target:
        raise QueryError("sort=closest needs closest=<timestamp>")
    checks = [f if isinstance(f, CdxFilter) else CdxFilter.parse(f) for f in filters]
    start, end = search_range(url, match)
    stmt = _columns().where(Capture.surt >= start, Capture.surt < end)
    if lo:
        stmt = stmt.where(Capture.timestamp >= lo)
    if hi:
        stmt = stmt.where(Capture.timestamp <= hi + "999999")
    if source_id:
        stmt = stmt.where(Capture.source_id == source_id)
    if record_types is not None:
        stmt = stmt.where(Capture.record_type.in_(list(record_types)))
    order = (Capture.surt.desc(), Capture.timestamp.desc()) if sort == "reverse" else (Capture.surt, Capture.timestamp)
    stmt = stmt.order_by(*order)
    pushdown = limit is not None and not checks and sort != "closest"
    if pushdown:
        stmt = stmt.limit(limit)
    out: list[CdxEntry] = []
    with catalog.read_session() as session:
        for row in session.execute(stmt):
            entry = _entry(row)
            if checks and not all(check(entry.fields()) for check in checks):
                continue
            out.append(entry)
            if limit is not None and sort != "closest" and len(out) >= limit:
                break
    if sort == "closest" and target:
        when = ts_datetime(target)
        out.sort(key=lambda e: abs((e.moment - when).total_seconds()))
        out = out[:limit] if limit else out
    return out


# ------------------------------------------------------------------------------------------------ output


def format_entries(entries: Iterable[CdxEntry], output: str = "cdxj",
                   fl: str | Sequence[str] | None = None) -> Iterator[str]:
    """Lines (without newline) in pywb's cdxj, json (NDJSON) or text output."""
    if output not in OUTPUTS:
        raise QueryError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    fields = parse_fl(fl)
    for entry in entries:
        data = entry.fields()
        if fields:
            data = {k: data[k] for k in fields}
        if output == "json":
            yield json.dumps(data, ensure_ascii=False)
        elif output == "text":
            yield " ".join(str(v) if v != "" else "-" for v in data.values())
        else:
            head = f"{data.pop('urlkey', entry.urlkey)} {data.pop('timestamp', entry.timestamp)}"
            yield f"{head} {json.dumps(data, ensure_ascii=False)}"


def parse_fl(fl: str | Sequence[str] | None) -> list[str]:
    names = [f.strip() for f in (fl.split(",") if isinstance(fl, str) else fl or []) if f.strip()]
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise QueryError(f"unknown field(s) in fl: {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    return names


def content_type(output: str) -> str:
    return {"json": "application/x-ndjson", "text": "text/plain"}.get(output, "text/x-cdxj") + "; charset=utf-8"
