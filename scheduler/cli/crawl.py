"""``listwatch crawl``, ``listwatch demo`` and ``listwatch sources``: crawling now, by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crawlers.report import CrawlReport
from crawlers.sources import Source, SourceError, load_source, load_sources
from scheduler.cli.common import console, err
from scheduler.cli.common import settings_or_exit as _settings
from scheduler.settings import Settings

app = typer.Typer()
sources_app = typer.Typer(help="Check and list source definitions.", no_args_is_help=True)
DEMO_SOURCES = Path(__file__).resolve().parents[2] / "crawlers" / "demo" / "sources"


def _resolve_source(ref: str, settings: Settings) -> Source:
    """A source by path to its YAML file, or by id in the sources directory."""
    try:
        path = Path(ref)
        if path.suffix in (".yaml", ".yml") or path.exists():
            return load_source(path)
        found = load_sources(settings.sources_dir) if settings.sources_dir.is_dir() else {}
    except SourceError as exc:
        err.print(f"[red]source:[/] {exc}")
        raise typer.Exit(2) from None
    if ref not in found:
        err.print(f"[red]source:[/] no source {ref!r} in {settings.sources_dir} "
                  f"(known: {', '.join(sorted(found)) or 'none'})")
        raise typer.Exit(2)
    return found[ref]


def print_reports(reports: list[CrawlReport]) -> None:
    table = Table(title="Crawl results")
    for column in ("source", "status", "listing pages", "detail pages", "attachments", "items",
                   "problems", "WARC bytes"):
        table.add_column(column, justify="right" if column not in ("source", "status") else "left")
    for r in reports:
        status = "[green]complete[/]" if r.complete else f"[yellow]incomplete[/] ({r.stop_reason})"
        if r.challenges:
            status = "[red]blocked[/]"
        table.add_row(r.source_id, status, str(r.pages_ok["listing"]), str(r.pages_ok["detail"]),
                      str(r.pages_ok["attachment"]), str(r.items),
                      str(len(r.problems) + len(r.challenges)), f"{r.warc_bytes:,}")
    console.print(table)
    for r in reports:
        for p in [*r.challenges, *r.problems]:
            console.print(f"  [yellow]{r.source_id}[/] {p.role} {p.url}: {p.message}")
        for f in r.warc_files:
            console.print(f"  [dim]{r.source_id} WARC[/] {f}")


@app.command()
def crawl(
    sources: Annotated[list[str], typer.Argument(help="Source ids (in the sources directory) or YAML paths.")],
    run_id: Annotated[str | None, typer.Option(help="Run id (default: time + random).")] = None,
    kind: Annotated[str, typer.Option(help="full (all pages) or quick (first pages, new items only).")] = "full",
    as_json: Annotated[bool, typer.Option("--json", help="Print the crawl reports as JSON.")] = False,
    no_capture: Annotated[bool, typer.Option("--no-capture", help="Crawl without writing WARCs.")] = False,
) -> None:
    """Crawl sources now (side by side, in this process), then index, diff, alert and store.

    Example: ``listwatch crawl demo-mofcom demo-tenders``. Exits 1 when a source yielded no listing page.
    """
    from scheduler.pipeline import crawl_and_ingest

    if kind not in ("full", "quick"):
        err.print(f"[red]crawl:[/] --kind must be full or quick, not {kind!r}")
        raise typer.Exit(2)
    settings = _settings()
    chosen = [_resolve_source(ref, settings) for ref in sources]
    outcomes = crawl_and_ingest(settings, chosen, kind=kind, run_id=run_id, capture=not no_capture)
    if as_json:
        print(json.dumps([o.report.to_dict() | {"status": o.status, "events": o.events, "stored": o.stored,
                                                "steps_failed": o.steps_failed} for o in outcomes],
                         ensure_ascii=False, indent=2))
    else:
        print_reports([o.report for o in outcomes])
        for o in outcomes:
            for step in o.steps_failed:
                err.print(f"  [yellow]{o.report.source_id}[/] {step}")
    raise typer.Exit(0 if all(o.report.pages_ok["listing"] for o in outcomes) else 1)


@sources_app.command("check")
def sources_check(
    paths: Annotated[list[Path] | None, typer.Argument(help="Source files or directories.")] = None,
) -> None:
    """Validate source files. Example: ``listwatch sources check sources/``."""
    settings = _settings()
    failed = 0
    for path in paths or [settings.sources_dir]:
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            try:
                src = load_source(file)
                console.print(f"[green]ok[/] {file}: {src.id} ({src.render.mode}, {src.pagination.kind})")
            except SourceError as exc:
                failed += 1
                err.print(f"[red]error[/] {exc}")
    raise typer.Exit(1 if failed else 0)
