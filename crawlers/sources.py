"""Source definitions: one YAML file per watched listing, validated with pydantic.

A source declares where the listing is, how to render and page through it, how to extract items,
which detail pages and attachments to follow, and how politely to crawl. ``load_source``
(:mod:`crawlers.source_files`) turns a file into a ``Source`` or raises ``SourceError`` naming the file, the
field and the problem.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crawlers.source_checks import (
    ID_PATTERN,
    MAX_BYTES,
    MAX_DELAY,
    MAX_PAGES,
    MAX_SECONDS,
    MAX_TIMEOUT,
    check_encoding,
    check_headers,
    check_regex,
    check_schedule,
    check_selectors,
    check_template,
)

# Reading source files (environment substitution, YAML, error wording) lives in crawlers.source_files;
# its names stay importable from here, where callers have always found them.
from crawlers.source_files import (  # noqa: F401  (re-exported)
    SourceError,
    describe_errors,
    load_source,
    load_sources,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Rule(_Strict):
    """How to pull one value out of a node: exactly one of css / xpath / jsonpath / regex / const.

    ``regex`` alone applies to the node's text; with a selector it refines the selected text
    (first group if any). ``type`` post-processes: ``url`` makes it absolute, ``date`` gives
    ISO 8601, ``int`` a number, ``text`` collapses whitespace, ``html`` keeps markup.

    An element's text is read as a browser shows it: block elements and ``<br>`` separate words
    (``Commission<br>Status`` → ``Commission Status``), whitespace is collapsed. XPath is XPath 1.0
    (lxml). Dates are resolved against the page's capture time (``3天前``); ``missing_year`` says what
    to do with a date that has no year (``7月1日``): ``partial`` (default) keeps ``--07-01`` and reports
    it as a problem, ``capture`` takes the capture's year. A date without a day stays ``YYYY-MM``.
    """

    css: str | None = None
    xpath: str | None = None
    jsonpath: str | None = None
    regex: str | None = None
    const: str | None = None
    type: Literal["text", "url", "date", "int", "html"] = "text"
    many: bool = False
    default: str | None = None
    missing_year: Literal["partial", "capture"] = "partial"

    @model_validator(mode="after")
    def _one_selector(self) -> Rule:
        chosen = [n for n in ("css", "xpath", "jsonpath", "const") if getattr(self, n) is not None]
        if len(chosen) > 1:
            raise ValueError(f"give only one of css, xpath, jsonpath, const (got {', '.join(chosen)})")
        if not chosen and self.regex is None:
            raise ValueError("give one of css, xpath, jsonpath, regex or const")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        check_selectors(css=self.css, xpath=self.xpath, jsonpath=self.jsonpath)
        return self


def _rule(value: Any) -> Any:
    """A bare string is shorthand for a CSS rule."""
    return {"css": value} if isinstance(value, str) else value


RuleField = Annotated[Rule, Field(description="an extraction rule")]


class Items(_Strict):
    """Which nodes are items, and the fields of each.

    ``fragment`` (a JSONPath) names a JSON field holding an HTML fragment that contains the items,
    for endpoints that return ``{"html": "<ul>…</ul>"}``.

    ``comments: true`` also reads markup held inside HTML comments (``<!-- <li>…</li> -->``), as if
    the comment markers were not there. ``script`` names a JavaScript variable (or gives a regular
    expression ending just before the value) whose JSON or JavaScript object literal in an inline
    ``<script>`` holds the items (``var listData = {…}`` → ``script: listData``); the selector and
    fields are then JSONPath over that object. ``include`` / ``exclude`` map a field name to a
    regular expression searched in the field's text: an item is kept only if every ``include``
    matches and no ``exclude`` does (a missing field matches nothing).

    Keys: a URL key is made relative to the source's site (``/list/1.html?id=3``) when its host is
    a start URL's host (ignoring scheme, port and ``www.``), else scheme-less (``//other.gov.cn/…``),
    so a site moving to https, a new port or a new host keeps its programmes. ``key_params_drop``
    query parameters and fragments are dropped. Session ids, form tokens, cache busters and click ids
    (``;jsessionid=``, ``PHPSESSID``, ``CFID``, ``csrf_token``, ``_``, ``utm_*``, ``fbclid``…: the list is
    ``crawlers/keyparams.py``) are always dropped from keys, unless dropping one would give two links of a
    listing page the same key; a link that differs only in them is not an edit. A non-URL key (an id field)
    is trimmed.
    """

    selector: Rule
    fields: dict[str, Rule]
    key: str = "url"
    fragment: str | None = None
    comments: bool = False
    script: str | None = None
    include: dict[str, str] = {}
    exclude: dict[str, str] = {}
    key_params_drop: list[str] = Field(
        default_factory=lambda: ["utm_source", "utm_medium", "utm_campaign", "spm", "from"])

    @field_validator("selector", mode="before")
    @classmethod
    def _selector_shorthand(cls, v: Any) -> Any:
        return _rule(v)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields_shorthand(cls, v: Any) -> Any:
        return {k: _rule(r) for k, r in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _key_is_a_field(self) -> Items:
        if self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not one of the fields ({', '.join(self.fields)})")
        for what, filters in (("include", self.include), ("exclude", self.exclude)):
            for name, pattern in filters.items():
                if name not in self.fields:
                    raise ValueError(f"{what} names {name!r}, not one of the fields ({', '.join(self.fields)})")
                check_regex(pattern, f"{what}.{name}")
        if self.script is not None:
            check_regex(self.script, "script")
        check_selectors(jsonpath=self.fragment)
        return self


class Pagination(_Strict):
    """How to reach the listing's other pages.

    - ``none``: the start URL(s) only.
    - ``template``: ``template`` with ``{n}`` from ``first`` upward (``index_{n}.html``) until a
      page is missing or has no items. A missing page followed by one that lists programmes is a hole
      (the crawl is incomplete), not the end: the page after a missing one is always asked for.
    - ``next_link``: follow the ``next`` rule's link; a link back to the first page ends the listing, a
      link back to another page already fetched makes the crawl incomplete.
    - ``reverse_numbered``: newest page unnumbered, numbered pages count down to 1 (the oldest);
      the ``total`` rule reads the page count from the first page.
    - ``param``: set query parameter ``param`` to ``first``, ``first+1``… until no items
      (``total`` may read the page or item count to stop early).

    ``end``: for ``template``/``param`` without a ``total``, a rule matching what the listing's empty last
    page shows (e.g. ``{css: "ul.list"}`` for the empty list container, or ``{regex: "暂无"}``). An empty
    page counts as the end of the listing only when it matches; otherwise it is a failed page (a "system
    busy" page looks the same), so the crawl is incomplete and declares no removals. On the first page, for
    any ``kind``, ``end`` documents the empty listing ("暂无", "No programmes are currently open"): a first
    page without items that it matches means every programme is gone (declared missing, then removed, with
    that page as the evidence, however many there were); a first page without items that it does not match
    is a failed page.
    """

    kind: Literal["none", "template", "next_link", "reverse_numbered", "param"] = "none"
    template: str | None = None
    next: Rule | None = None
    total: Rule | None = None
    end: Rule | None = None
    param: str = "page"
    first: int = Field(default=1, ge=0, le=MAX_PAGES)
    page_size: int | None = Field(default=None, ge=1, le=MAX_PAGES)
    max_pages: int = Field(default=200, ge=1, le=MAX_PAGES)

    @field_validator("next", "total", "end", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return _rule(v) if v is not None else v

    @field_validator("template")
    @classmethod
    def _only_n(cls, v: str | None) -> str | None:
        if v is not None:
            check_template(v)
        return v

    @model_validator(mode="after")
    def _needs(self) -> Pagination:
        if self.kind in ("template", "reverse_numbered") and (not self.template or "{n}" not in self.template):
            raise ValueError(f"pagination kind {self.kind!r} needs a template containing {{n}}")
        if self.kind == "next_link" and self.next is None:
            raise ValueError("pagination kind 'next_link' needs a 'next' rule")
        if self.kind == "reverse_numbered" and self.total is None:
            raise ValueError("pagination kind 'reverse_numbered' needs a 'total' rule (the page count)")
        return self


class Attachments(_Strict):
    """Files linked from a detail page: the links ``selector`` finds whose path ends with one of
    ``extensions``. Each becomes ``{"name", "url"}`` in page order; the name is the link's text (else its
    ``title``, else the file name)."""

    selector: Rule = Rule.model_construct(css="a::attr(href)")  # built unchecked: no parsel import at start-up
    extensions: list[str] = ["pdf", "doc", "docx", "xls", "xlsx", "zip", "wps", "ofd"]
    max_bytes: int = Field(default=50_000_000, ge=1, le=MAX_BYTES)

    @field_validator("selector", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return _rule(v)


class LabelTable(_Strict):
    """Label/value rows such as ``<tr><th>主办单位</th><td>…</td></tr>`` mapped to field names."""

    rows: str = "table tr"
    label: str = "th, td:first-child"
    value: str = "td:last-child"
    labels: dict[str, str]
    types: dict[str, Literal["text", "url", "date", "int"]] = {}

    @model_validator(mode="after")
    def _selectors_compile(self) -> LabelTable:
        for css in (self.rows, self.label, self.value):
            check_selectors(css=css)
        return self


class Detail(_Strict):
    """Follow each item's link (the ``link`` field) and extract more fields there.

    ``format`` is the detail pages' own format (``auto``: from their Content-Type, else a sniff). When
    unset it is the source's ``format`` for HTML sources and ``auto`` otherwise, so a JSON listing can
    link to HTML detail pages.
    """

    link: str = "url"
    format: Literal["auto", "html", "json"] | None = None
    fields: dict[str, Rule] = {}
    table: LabelTable | None = None
    attachments: Attachments | None = None
    render: bool = False
    wait_for: str | None = None      # for rendered detail pages (render.wait_for applies to listing pages)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields_shorthand(cls, v: Any) -> Any:
        return {k: _rule(r) for k, r in v.items()} if isinstance(v, dict) else v


class Render(_Strict):
    mode: Literal["static", "browser"] = "static"
    wait_for: str | None = None
    wait_until: Literal["load", "domcontentloaded", "networkidle", "commit"] = "domcontentloaded"
    timeout: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT)
    screenshot: bool = True


class Politeness(_Strict):
    delay: float = Field(default=0.5, ge=0, le=MAX_DELAY)
    concurrency: int = Field(default=4, ge=1, le=64)
    obey_robots: bool = True
    user_agent: str | None = None


class Limits(_Strict):
    max_pages: int = Field(default=1000, ge=1, le=MAX_PAGES)
    max_response_bytes: int = Field(default=30_000_000, ge=1024, le=MAX_BYTES)
    max_seconds: int = Field(default=1800, ge=1, le=MAX_SECONDS)
    retries: int = Field(default=2, ge=0, le=10)
    timeout: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT)


class Schedule(_Strict):
    """When the scheduler checks this source: a cheap ``quick`` check often, a ``full`` sweep less often.

    Each is an interval (``15m``, ``6h``, ``1d``) or a five-field cron expression (``*/15 * * * *``);
    None leaves that check off. A quick check reads the first ``quick_pages`` listing pages with
    conditional GETs, stops at the first page without a new programme and follows only new items.
    """

    quick: str | None = None
    full: str | None = "6h"
    quick_pages: int = Field(default=2, ge=1, le=MAX_PAGES)
    jitter: int | None = Field(default=None, ge=0, le=86400)
    enabled: bool = True

    @field_validator("quick", "full")
    @classmethod
    def _interval_or_cron(cls, v: str | None) -> str | None:
        return check_schedule(v) if v is not None else v


class Fetch(_Strict):
    """Where this source's crawl may fetch from: the fetch policy against SSRF (``crawlers.fetch_policy``).

    By default only the start URLs' hosts are fetched, and only from public addresses (a start URL on an IP
    literal or ``localhost`` may be fetched from its own host and port). ``hosts`` adds host names (a
    leading ``*.`` covers subdomains: ``*.example.gov.cn``), e.g. where attachments or, for rendered pages,
    scripts and styles live. ``internal`` allows internal addresses (private, loopback, link-local) for
    the origins (``intranet.example:8080``) or networks (``10.1.0.0/16``) listed; nothing else internal is
    ever fetched, whatever a page links or redirects to.
    """

    hosts: list[str] = []
    internal: list[str] = []

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            name = host.removeprefix("*.")
            if not name or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", name) or "/" in name:
                raise ValueError(f"{host!r} is not a host name (give 'files.example.org' or '*.example.org')")
        return hosts

    @field_validator("internal")
    @classmethod
    def _origins_or_networks(cls, entries: list[str]) -> list[str]:
        from crawlers.fetch_policy import parse_internal

        for entry in entries:
            parse_internal(entry)
        return entries


class Source(_Strict):
    """One watched listing. ``hook`` (``module:function``) post-processes each listing page's items:
    ``hook(response: scrapy.http.TextResponse, items: list[dict], source: Source) -> list[dict]``, called with
    the page (live or archived alike) and the fields extracted by the rules; it returns the items to keep
    (see ``tests/sample_hooks.py``)."""

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    name: str
    start_urls: list[str] = Field(min_length=1)
    format: Literal["auto", "html", "json", "feed"] = "auto"
    render: Render = Render()
    pagination: Pagination = Pagination()
    items: Items | None = None
    detail: Detail | None = None
    encoding: str | None = None
    politeness: Politeness = Politeness()
    limits: Limits = Limits()
    hook: str | None = Field(default=None, pattern=r"^[\w.]+:\w+$")
    schedule: Schedule = Schedule()
    fetch: Fetch = Fetch()
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        return check_headers(v)

    @field_validator("start_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an absolute http(s) URL")
        return urls

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        return check_encoding(v) if v is not None else v

    @model_validator(mode="after")
    def _items_unless_feed(self) -> Source:
        if self.items is None and self.format != "feed" and not self.hook:
            raise ValueError("an 'items' section is required (unless format is 'feed' or a hook is given)")
        return self
