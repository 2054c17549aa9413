"""listwatch crawl, listwatch demo and listwatch sources: crawling now, by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from crawlers.report import runs_root
from crawlers.sources import Source, SourceError, load_source, load_sources
from scheduler.alerts.redact import redact_url
from scheduler.cli.common import console, did_you_mean, err, fail, valid_list
from scheduler.cli.common import settings_or_exit as _settings
from scheduler.settings import Settings

if TYPE_CHECKING:
    from scheduler.pipeline import Outcome

app = typer.Typer()
sources_app = typer.Typer(help="Source files: check them, start new ones.", no_args_is_help=True)
DEMO_SOURCES = Path(__file__).resolve().parents[2] / "crawlers" / "demo" / "sources"


def _resolve_source(ref: str, settings: Settings) -> Source:
    """A source by path to its YAML file, or by id in the sources directory (a broken file there is an
    error for that file only)."""
    broken: list[SourceError] = []
    try:
        path = Path(ref)
        if path.suffix in (".yaml", ".yml") or path.exists():
            return load_source(path)
        found = load_sources(settings.sources_dir, broken) if settings.sources_dir.is_dir() else {}
    except SourceError as exc:
        raise fail("source", str(exc)) from None
    if ref not in found:
        for problem in broken:
            err.print(f"[red]source file skipped:[/] {problem}", highlight=False, soft_wrap=True)
        hint = "" if found else " (run `listwatch demo` or `listwatch init` to get some)"
        raise fail("source", f"no source {ref!r} in {settings.sources_dir}/{did_you_mean(ref, found)}; "
                             f"known: {valid_list(found)}{hint}")
    return found[ref]


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def print_outcomes(outcomes: list[Outcome], settings: Settings) -> None:
    """A table of what each crawl fetched, found and archived, then problems and where the WARCs are."""
    table = Table(title="Crawl results", box=None, pad_edge=False, title_justify="left", header_style="bold underline")
    widest = max([len(o.report.source_id) for o in outcomes] + [6])
    for column in ("source", "status", "pages", "items", "events", "errors", "WARC", "stored"):
        table.add_column(column, justify="left" if column in ("source", "status") else "right", no_wrap=True,
                         min_width=widest if column == "source" else len(column))
    for o in outcomes:
        r = o.report
        status = {"complete": "[green]complete[/]", "failed": "[red]failed[/]"}.get(o.status, f"[yellow]{o.status}[/]")
        if r.challenges:
            status = "[red]blocked[/]"
        pages = f"{r.pages_ok['listing']}/{r.pages_ok['detail']}/{r.pages_ok['attachment']}"
        table.add_row(r.source_id, status, pages, str(r.items), str(len(o.events)),
                      str(len(r.problems) + len(r.challenges)), _size(r.warc_bytes),
                      f"{o.stored}" + (f"+{o.waiting}" if o.waiting else ""))
    console.print(table)
    console.print("pages: listing/detail/attachment; stored: WARC files moved to the store (+ still in the spool)",
                  style="dim", highlight=False)
    for o in outcomes:
        for p in [*o.report.challenges, *o.report.problems]:
            console.print(f"  [yellow]{o.report.source_id}[/] {p.role} {p.url}: {p.message}", soft_wrap=True,
                          highlight=False)
        for reason in o.report.degraded:
            console.print(f"  [yellow]{o.report.source_id}[/] degraded: {reason}", soft_wrap=True, highlight=False)
        for step in o.steps_failed:
            err.print(f"  [yellow]{o.report.source_id}[/] {step}", soft_wrap=True, highlight=False)
    from archive.storage import open_storage

    runs = runs_root(settings.data_dir).resolve()
    console.print(f"WARCs: [bold]{open_storage(settings).describe()}[/] (spool: {settings.spool_dir.resolve()})\n"
                  f"catalog: {redact_url(settings.catalog).split('///')[-1]}\nitems and reports: {runs}",
                  soft_wrap=True, highlight=False)


@app.command()
def crawl(
    sources: Annotated[list[str], typer.Argument(help="Source ids (in the sources directory) or YAML paths.")],
    run_id: Annotated[str | None, typer.Option(help="Run id (default: time + random).")] = None,
    kind: Annotated[str, typer.Option(help="full (all pages) or quick (first pages, new items only).")] = "full",
    as_json: Annotated[bool, typer.Option("--json", help="Print the crawl reports as JSON.")] = False,
    no_capture: Annotated[bool, typer.Option("--no-capture", help="Crawl without writing WARCs.")] = False,
) -> None:
    """Crawl sources now (side by side, in this process), then index, diff, alert and store.

    Shows pages, items and errors per source while it runs. Exits 1 when a source yielded no listing page.

    Example: listwatch crawl demo-mofcom demo-tenders
    """
    from scheduler.cli.progress import CrawlProgress
    from scheduler.lifeline import watch_parent
    from scheduler.pipeline import crawl_and_ingest

    watch_parent()   # started by a scheduler or worker: die with it

    if kind not in ("full", "quick"):
        raise fail("--kind", f"must be full or quick, not {kind!r}")
    settings = _settings()
    chosen = [_resolve_source(ref, settings) for ref in sources]
    with CrawlProgress(err, [s.id for s in chosen]) as progress:
        outcomes = crawl_and_ingest(settings, chosen, kind=kind, run_id=run_id, capture=not no_capture,
                                    watch=progress.watch)
    if as_json:
        print(json.dumps([o.report.to_dict() | {"status": o.status, "events": o.events, "stored": o.stored,
                                                "steps_failed": o.steps_failed} for o in outcomes],
                         ensure_ascii=False, indent=2))
    else:
        print_outcomes(outcomes, settings)
    raise typer.Exit(0 if all(o.report.pages_ok["listing"] for o in outcomes) else 1)


@sources_app.command("check")
def sources_check(
    paths: Annotated[list[Path] | None, typer.Argument(help="Source files or directories.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per file.")] = False,
) -> None:
    """Validate source files (default: the sources directory).

    Example: listwatch sources check sources/
    """
    settings = _settings()
    failed = 0
    for path in paths or [settings.sources_dir]:
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            try:
                src = load_source(file)
                if as_json:
                    print(json.dumps({"file": str(file), "ok": True, "id": src.id, "render": src.render.mode,
                                      "pagination": src.pagination.kind}, ensure_ascii=False))
                else:
                    paging = "no paging" if src.pagination.kind == "none" else f"{src.pagination.kind} paging"
                    console.print(f"[green]ok[/] {file}: {src.id} ({src.render.mode} pages, {paging})",
                                  soft_wrap=True, highlight=False)
            except SourceError as exc:
                failed += 1
                if as_json:
                    print(json.dumps({"file": str(file), "ok": False, "error": str(exc)}, ensure_ascii=False))
                else:
                    err.print(f"[red]error[/] {exc}", soft_wrap=True, highlight=False)
    raise typer.Exit(1 if failed else 0)
