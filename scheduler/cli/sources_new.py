"""listwatch sources new URL: fetch a listing page, propose a source file for it, show what it extracts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
import yaml
from rich import box
from rich.table import Table

from scheduler.cli.common import command_name, console, err, fail, fit, settings_or_exit
from scheduler.settings import Settings

app = typer.Typer()


def _fetch(url: str, settings: Settings) -> tuple[bytes, dict[str, str]]:
    """The page, fetched as a crawl would (``crawlers.trial.fetch``): the fetch policy on every redirect (the
    typed URL's own origin is allowed, an internal address anything else redirects to is not), a total time
    limit and a size limit (a gzip bomb or an endless body stops there)."""
    from crawlers.sources import Source
    from crawlers.trial import fetch

    parts = urlsplit(url)
    try:
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise fail("sources new", f"{url!r} is not a valid URL ({exc})") from None
    # the typed URL's own origin may be internal (a fetch.internal entry; an IPv6 literal bracketed as in a URL)
    own = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    probe = Source.model_validate({"id": "new", "name": "new", "start_urls": [url], "format": "feed",
                                   "politeness": {"user_agent": settings.user_agent},
                                   "fetch": {"internal": own}})
    try:
        status, headers, body = fetch(url, probe)
    except (OSError, ValueError) as exc:
        raise fail("sources new", f"could not fetch {url}: {exc}") from None
    if status >= 400:
        raise fail("sources new", f"{url} answered HTTP {status}")
    return body, dict(headers)


def _render(url: str, settings: Settings) -> str:
    """The page's DOM after its scripts ran (Chromium, as rendered sources are crawled)."""
    from playwright.sync_api import Error, sync_playwright

    from crawlers.settings import CHROMIUM_ARGS

    try:
        with sync_playwright() as pw:
            # browser-wide too: a page's user agent misses the fetch of a service worker's script
            browser = pw.chromium.launch(executable_path=settings.chromium, headless=True,
                                         args=[*CHROMIUM_ARGS, f"--user-agent={settings.user_agent}"])
            page = browser.new_page(user_agent=settings.user_agent)
            page.goto(url, wait_until="networkidle", timeout=30000)
            html = page.content()
            browser.close()
            return html
    except Error as exc:
        err.print(f"[yellow]sources new:[/] could not render {url} in {settings.chromium}: {exc}", highlight=False)
        return ""


def source_id_for(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "site").removeprefix("www.")
    words = [w for w in re.split(r"[^a-z0-9]+", f"{host} {parts.path}".lower()) if w and w not in
             ("html", "htm", "shtml", "index", "gov", "cn", "com", "org", "php", "aspx")]
    return "-".join(words)[:60].strip("-") or "new-source"


def propose_source(url: str, settings: Settings, *, render: str = "auto") -> tuple[dict[str, Any], list[str],
                                                                                   bytes, dict[str, str], bool]:
    """(source dict, notes, page bytes, headers, rendered) for ``url``; the source has no list when none is found."""
    from crawlers.extractor import decode
    from crawlers.propose import propose
    from crawlers.sources import Source

    body, headers = _fetch(url, settings)
    probe = Source(id="new", name="new", start_urls=[url], format="feed")
    text = decode(body, headers, probe).text
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    found = None if render == "always" else propose(url, text, content_type)
    rendered = False
    if found is None and render != "never" and "html" in (content_type or "text/html"):
        dom = _render(url, settings)
        found = propose(url, dom, "text/html") if dom else None
        if found is not None:
            rendered, body, headers = True, dom.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"}
            selector = found.source["items"]["selector"]
            found.source["render"] = {"mode": "browser", "wait_for": selector.replace(":has(td)", "")}
            found.notes.append("the list appears only after the page's scripts run: rendered in Chromium")
    source = {"id": source_id_for(url), "name": url, "start_urls": [url], **(found.source if found else {})}
    return source, (found.notes if found else []), body, headers, rendered


@app.command("new")
def sources_new(
    url: Annotated[str, typer.Argument(help="A listing page's URL.")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Where to write the file (default: sources_dir/ID.yaml).")] = None,
    source_id: Annotated[str | None, typer.Option("--id", help="The source id (default: from the URL).")] = None,
    render: Annotated[str, typer.Option(help="auto (browser only if the static page shows no list), "
                                             "always or never.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Propose a source file for a listing page: finds the repeated item blocks carrying links and dates,
    the pagination, and shows the items the proposal extracts. Edit the file, then check it with
    listwatch sources check (the proposal is a start: dates and titles may need a rule).

    Example: listwatch sources new http://127.0.0.1:8765/mofcom/list/index.html --id ministry
    """
    from crawlers.extractor import extract_page
    from crawlers.sources import Source

    if render not in ("auto", "always", "never"):
        raise fail("--render", f"must be auto, always or never, not {render!r}")
    if urlsplit(url).scheme not in ("http", "https"):
        raise fail("sources new", f"{url!r} is not an http(s) URL")
    settings = settings_or_exit()
    data, notes, body, headers, rendered = propose_source(url, settings, render=render)
    if source_id:
        data["id"] = source_id
    if "items" not in data and data.get("format") != "feed":
        raise fail("sources new", f"no repeated blocks with links found on {url}"
                   + (" (not even after rendering it)" if render != "never" else ""), 1)
    source = Source.model_validate(data)
    result = extract_page(source, url, "listing", headers, body, captured_at=datetime.now(UTC), rendered=rendered)
    path = output or settings.sources_dir / f"{source.id}.yaml"
    if path.exists() and not force:
        raise fail("sources new", f"{path} exists: pass --force to overwrite, or -o another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# proposed by listwatch sources new from {url} ({len(result.items)} items); edit and check\n"
    path.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _table(result.items)
    for note in notes:
        console.print(f"  {note}", highlight=False, soft_wrap=True)
    lw = command_name()
    console.print(f"wrote {path}; next: {lw} sources check {path}, then {lw} crawl {source.id}",
                  highlight=False, soft_wrap=True)


def _table(items: list[dict[str, Any]]) -> None:
    table = Table(title=f"{len(items)} item(s) extracted", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                  title_justify="left")
    table.add_column("date", no_wrap=True)
    table.add_column("title", no_wrap=True, ratio=1)
    width = max(console.width - 14, 20)
    for item in items[:15]:
        fields = item["fields"]
        table.add_row(str(fields.get("date") or "—")[:10], fit(str(fields.get("title") or ""), width).rstrip())
    console.print(table)
    for item in items[:15]:
        console.print(f"  {item['fields'].get('url')}", highlight=False, soft_wrap=True)
    if len(items) > 15:
        console.print(f"  … and {len(items) - 15} more", highlight=False)
