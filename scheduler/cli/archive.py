"""listwatch archive: move the spool to the store, audit the store, rebuild the catalog from it.

    listwatch archive sync                      # upload, verify, then empty the spool
    listwatch archive verify --sample 20        # re-hash 20 random stored WARCs; exit 1 on any problem
    listwatch archive reindex --source mofcom   # rebuild captures from the stored WARCs
    listwatch archive status                    # WARC files per state, bytes, oldest unsynced
    listwatch archive prune --dry-run           # what retention would delete of old unchanged checks' rows
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from archive.catalog import Catalog
from archive.catalog.models import WarcFile
from archive.storage import Storage, StorageError
from scheduler.cli.common import console, err, opened_archive, opened_catalog, print_json, settings_or_exit
from scheduler.settings import Settings

app = typer.Typer(help="Store, verify and re-index the archive.", no_args_is_help=True)


@contextlib.contextmanager
def _progress(title: str) -> Iterator[Callable[[int, int, str], None]]:
    """A Rich progress bar (on stderr) fed by (done, total, label) callbacks."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[label]}"), TimeElapsedColumn(), console=err, transient=True)
    task = bar.add_task(title, total=None, label="")

    def update(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, label=label[-60:])

    with bar:
        yield update


def _open() -> tuple[Settings, Catalog, Storage]:
    settings = settings_or_exit()
    return (settings, *opened_archive(settings))


def _summary(title: str, **counts: int) -> None:
    table = Table(title=title)
    for name in counts:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_row(*(f"{value:,}" for value in counts.values()))
    console.print(table)


@app.command()
def sync(
    verify: Annotated[str | None, typer.Option(help="checksum or read-back (default: storage.verify).")] = None,
) -> None:
    """Upload closed spool WARCs, verify them, then delete the spool copies. Exit 1 if any file stays.

    Example: listwatch archive sync
    """
    settings, catalog, storage = _open()
    from archive.spool import sync as run_sync

    mode = verify or settings.storage.verify
    if mode not in ("checksum", "read-back"):
        err.print(f"[red]sync:[/] --verify must be checksum or read-back, not {mode!r}")
        raise typer.Exit(2)
    with _progress("sync") as progress:
        result = run_sync(catalog, storage, settings.spool_dir, verify=mode, progress=progress)  # type: ignore[arg-type]
    for key in result.verified:
        how = "uploaded" if key in result.uploaded else "already stored"
        console.print(f"[green]verified[/] {key} ({how})", soft_wrap=True, highlight=False)
    for pending in result.waiting:
        console.print(f"[yellow]waiting[/] {pending.name}: {pending.reason}", soft_wrap=True, highlight=False)
    for pending in result.failed:
        console.print(f"[red]failed[/] {pending.name}: {pending.reason}", soft_wrap=True, highlight=False)
    _summary(f"Spool → {storage.describe()}", verified=len(result.verified), uploaded=len(result.uploaded),
             bytes_uploaded=result.bytes_uploaded, waiting=len(result.waiting), failed=len(result.failed))
    console.print(result.summary(), soft_wrap=True, highlight=False)
    catalog.dispose()
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def verify(
    all_files: Annotated[bool, typer.Option("--all", help="Audit every stored WARC (the default).")] = False,
    sample: Annotated[int | None, typer.Option(min=1, help="Audit N random stored WARCs.")] = None,
    older_than_days: Annotated[float | None, typer.Option(min=0, help="Audit WARCs unverified for N days.")] = None,
) -> None:
    """Re-hash stored WARCs against the catalog; exit 1 on any missing or corrupt file.

    Example: listwatch archive verify --older-than-days 30
    """
    if all_files and (sample is not None or older_than_days is not None):
        err.print("[red]verify:[/] --all cannot be combined with --sample or --older-than-days")
        raise typer.Exit(2)
    _settings, catalog, storage = _open()
    from archive.fixity import verify as run_verify

    with _progress("verify") as progress:
        report = run_verify(catalog, storage, sample=sample, older_than_days=older_than_days, progress=progress)
    for problem in report.problems:
        console.print(f"[red]{problem.state}[/] {problem.key}: {problem.problem}", soft_wrap=True, highlight=False)
    _summary(f"Fixity of {storage.describe()}", selected=report.selected, checked=report.checked,
             verified=len(report.verified), missing=len(report.missing), corrupt=len(report.corrupt),
             unreadable=len(report.unreadable), bytes_read=report.bytes_read)
    console.print(f"{report.checked} of {report.selected} checked, {len(report.verified)} verified, "
                  f"{len(report.missing)} missing, {len(report.corrupt)} corrupt, {len(report.unreadable)} unreadable",
                  soft_wrap=True)
    for key in report.orphans:
        console.print(f"[yellow]orphan[/] {key}: in the store, not in the catalog (`listwatch archive reindex` adds "
                      "it)", soft_wrap=True, highlight=False)
    if report.unavailable:
        err.print(f"[red]verify stopped:[/] {report.unavailable}")
    catalog.dispose()
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def reindex(source: Annotated[str | None, typer.Option(help="Only this source's WARCs.")] = None) -> None:
    """Rebuild the catalog's captures (and missing WARC rows) from the stored WARCs alone.

    Example: listwatch archive reindex --source demo-static
    """
    _settings, catalog, storage = _open()
    from archive.reindex import reindex_report

    try:
        with _progress("reindex") as progress:
            result = reindex_report(catalog, storage, source_id=source, progress=progress)
    except StorageError as exc:
        err.print(f"[red]reindex:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{result.captures} captures from {result.files} WARC files "
                  f"({len(result.created)} WARC rows recreated)")
    for key in result.corrupt:
        err.print(f"[red]corrupt:[/] {key} differs from the catalog's SHA-256")
    for key, problem in result.failed:
        err.print(f"[red]unreadable:[/] {key}: {problem}")
    catalog.dispose()
    raise typer.Exit(1 if result.corrupt or result.failed else 0)


@app.command()
def prune(
    older_than_days: Annotated[int | None, typer.Option(
        min=1, help="Prune checks older than N days (default: retention.unchanged_days).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be deleted; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Delete the catalog rows of old unchanged quick checks (their WARCs stay in the store; see retention).

    Example: listwatch archive prune --dry-run
    """
    settings = settings_or_exit()
    days = older_than_days if older_than_days is not None else settings.retention.unchanged_days
    if not days:
        err.print("[red]prune:[/] retention is off (retention.unchanged_days: 0); pass --older-than-days N to "
                  "prune once")
        raise typer.Exit(2)
    catalog = opened_catalog(settings)
    from archive.retention import prune_unchanged

    result = prune_unchanged(catalog, older_than_days=days, dry_run=dry_run)
    catalog.dispose()
    verb = "would delete" if dry_run else "deleted"
    if as_json:
        print_json({"dry_run": dry_run, "older_than_days": days, "checks": result.checks,
                    "captures": result.captures, "warc_files": result.warc_files, "kept": result.kept,
                    "days": [{"source": s, "day": d, "checks": n} for (s, d), n in sorted(result.days.items())]})
        return
    for (source, day), count in sorted(result.days.items()):
        console.print(f"{source} {day}: {verb} {count} unchanged check(s)", soft_wrap=True, highlight=False)
    console.print(f"{verb} the rows of {result.checks} unchanged check(s) older than {days} days: "
                  f"{result.checks} crawl_runs, {result.captures} captures, {result.warc_files} warc_files "
                  f"({result.kept} older complete quick checks kept: first/last of a day, or referenced); "
                  "their WARCs stay in the store (`listwatch archive reindex` restores the rows)",
                  soft_wrap=True, highlight=False)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """WARC files per state, their bytes, and the oldest file not yet stored.

    Example: listwatch archive status --json
    """
    settings = settings_or_exit()
    catalog = opened_catalog(settings)
    from archive.spool import closed_warcs

    with catalog.session() as session:
        rows = session.execute(select(WarcFile.state, func.count(), func.coalesce(func.sum(WarcFile.size), 0))
                               .group_by(WarcFile.state).order_by(WarcFile.state)).all()
        oldest = session.scalar(select(func.min(WarcFile.created_at)).where(WarcFile.state == "spooled"))
    if as_json:
        closed = closed_warcs(settings.spool_dir)
        states = [{"state": str(state), "files": count, "bytes": int(size)} for state, count, size in rows]
        print_json({"states": states,
                    "spool_closed": len(closed),
                    "spool_unregistered": sum(1 for p in closed if not _known(catalog, p.name)),
                    "oldest_unsynced": oldest.isoformat() if oldest is not None else None})
        catalog.dispose()
        return
    table = Table(title="WARC files")
    for column in ("state", "files", "bytes"):
        table.add_column(column, justify="left" if column == "state" else "right")
    for state, count, size in rows:
        table.add_row(str(state), str(count), f"{int(size):,}")
    console.print(table)
    unregistered = [p for p in closed_warcs(settings.spool_dir) if not _known(catalog, p.name)]
    console.print(f"spool {settings.spool_dir}: {len(closed_warcs(settings.spool_dir))} closed WARC files "
                  f"({len(unregistered)} not yet in the catalog)")
    if oldest is not None:
        age = datetime.now(UTC) - oldest
        console.print(f"oldest unsynced: {oldest:%Y-%m-%d %H:%M:%S} UTC ({age.total_seconds() / 3600:.1f} h ago)")
    catalog.dispose()


def _known(catalog: Any, name: str) -> bool:
    with catalog.session() as session:
        return session.scalar(select(WarcFile.id).where(WarcFile.name == name)) is not None
