"""listwatch programs: list, search, show, export and reprocess programme records."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from archive.catalog.db import Catalog
from archive.catalog.models import Program
from scheduler.cli.common import (
    check_choice,
    check_source,
    console,
    fail,
    fit,
    opened_archive,
    opened_catalog,
    print_json,
    settings_or_exit,
)

app = typer.Typer(help="Programme records: list, search, history, export, re-extraction.", no_args_is_help=True)
STATUSES = ("active", "missing", "removed")
SourceOpt = Annotated[str | None, typer.Option("--source", "-s", help="Only this source id.")]
StatusOpt = Annotated[str | None, typer.Option(help="Only this status: active, missing or removed.")]
LimitOpt = Annotated[int, typer.Option(help="At most this many rows.", min=1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _catalog(source: str | None = None, status: str | None = None) -> Catalog:
    """The catalog, after checking the --source and --status the user typed."""
    settings = settings_or_exit()
    check_choice("--status", status, STATUSES)
    check_source(settings, source)
    return opened_catalog(settings)


def _table(rows: list[Program], title: str) -> None:
    """One line per programme (title cut to fit), its key below it in full: keys are what show takes."""
    width = max(console.width, 60)
    sid = max([len(p.source_id) for p in rows] + [6])
    console.print(f"[bold]{title}[/]", highlight=False)
    if rows:
        console.print(f"[bold]{'source'.ljust(sid)}  {'status':7}  {'last seen':10}  title[/]", highlight=False)
    for p in rows:
        head = f"{p.source_id.ljust(sid)}  {p.status:7}  {p.last_seen:%Y-%m-%d}  "
        console.print(head + fit(p.title, width - len(head)).rstrip(), highlight=False, markup=False)
        console.print(f"  [dim]{p.key}[/]", highlight=False, soft_wrap=True)


@app.command("list")
def list_cmd(source: SourceOpt = None, status: StatusOpt = None, limit: LimitOpt = 200,
             as_json: JsonOpt = False) -> None:
    """List programmes, newest first, each with its key (what programs show takes).

    Example: listwatch programs list -s demo-mofcom --status removed
    """
    _print_programmes(source, status, limit, as_json)


@app.command()
def search(text: Annotated[str, typer.Argument(help="Words that must all appear in the title or a field.")],
           source: SourceOpt = None, status: StatusOpt = None, limit: LimitOpt = 200,
           as_json: JsonOpt = False) -> None:
    """Search titles, fields and attachment names (case-insensitive substrings, every word): the web's search.

    Example: listwatch programs search 杂交水稻
    """
    _print_programmes(source, status, limit, as_json, text)


def _print_programmes(source: str | None, status: str | None, limit: int, as_json: bool,
                      text: str | None = None) -> None:
    """What ``programs list`` and ``programs search`` print: one query, ``text`` narrowing it."""
    from archive.programs.query import list_programs, program_dict

    rows = list_programs(_catalog(source, status), source=source, status=status, text=text, limit=limit)
    if as_json:
        print_json([program_dict(p) for p in rows])
        return
    _table(rows, f"{len(rows)} programme(s)" + (f" matching {text!r}" if text else ""))


@app.command()
def show(source: Annotated[str, typer.Argument(help="The programme's source id.")],
         key: Annotated[str, typer.Argument(help="Its key, as programs list prints it (or its unique ending).")],
         as_json: JsonOpt = False) -> None:
    """A programme's history: versions with field diffs (old → new) and the records that show them.

    Example: listwatch programs show demo-mofcom 1019.html (a key's unique ending is enough)
    """
    from archive.programs.diff import field_changes
    from archive.programs.query import history, keys_ending_with, program_dict

    catalog = _catalog(source)
    found = history(catalog, source, key)
    if found is None:
        endings = keys_ending_with(catalog, source, key)
        if len(endings) != 1:
            hint = f"; keys ending so: {', '.join(endings)}" if endings else ""
            raise fail("programs show", f"no programme {key!r} in source {source!r}{hint} "
                                        f"(see listwatch programs list -s {source})", 1)
        found = history(catalog, source, endings[0])
        assert found is not None
    p = found.program
    if as_json:
        print_json(program_dict(p) | {
            "versions": [{"run_id": v.run_id, "seen_at": v.seen_at, "fields": v.fields,
                          "listing_record_id": v.listing_record_id, "detail_record_id": v.detail_record_id}
                         for v in found.versions],
            "events": [{"kind": e.kind, "at": e.at, "summary": e.summary, "changes": e.changes,
                        "backfill": e.backfill, "before_record_id": e.before_record_id,
                        "after_record_id": e.after_record_id} for e in found.events]})
        return
    console.print(f"[bold]{p.title}[/]\n{p.key}\nstatus [bold]{p.status}[/]"
                  + (f" ({p.removal_reason})" if p.removal_reason else "")
                  + f"; first seen {p.first_seen:%Y-%m-%d %H:%M}, last seen {p.last_seen:%Y-%m-%d %H:%M}",
                  highlight=False, soft_wrap=True)
    previous: dict[str, object] = {}
    for version in found.versions:
        console.print(f"\n[bold]version[/] seen {version.seen_at:%Y-%m-%d %H:%M} (run {version.run_id})\n"
                      f"  listing record {version.listing_record_id or '-'}\n"
                      f"  detail record  {version.detail_record_id or '-'}", highlight=False, soft_wrap=True)
        for name, (old, new) in field_changes(previous, version.fields).items():
            console.print(f"  {name}: " + (f"{old} → {new}" if previous else f"{new}"), highlight=False,
                          markup=False)
        previous = version.fields
    console.print("\n[bold]events[/]")
    for e in found.events:
        flag = " [dim](backfill)[/]" if e.backfill else ""
        console.print(f"  {e.at:%Y-%m-%d %H:%M} {e.kind}{flag}: {e.summary}\n"
                      f"    before {e.before_record_id or '-'}\n    after  {e.after_record_id or '-'}",
                      highlight=False, soft_wrap=True)


@app.command()
def export(fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "json",
           source: SourceOpt = None, status: StatusOpt = None,
           output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default stdout).")] = None,
           ) -> None:
    """Export programmes with their current fields. Example: listwatch programs export -f csv -o p.csv."""
    from archive.programs.query import EXPORT_COLUMNS, export_rows

    check_choice("--format", fmt, ("csv", "json"))
    rows = export_rows(_catalog(source, status), source=source, status=status)
    out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if fmt == "json":
            out.write("[")
            for i, row in enumerate(rows):
                out.write(("," if i else "") + "\n" + json.dumps(row, ensure_ascii=False))
            out.write("\n]\n")
        else:
            writer = csv.writer(out)
            writer.writerow([*EXPORT_COLUMNS, "fields"])
            for row in rows:
                writer.writerow([*(row[c] for c in EXPORT_COLUMNS), json.dumps(row["fields"], ensure_ascii=False)])
    finally:
        if output:
            out.close()


@app.command()
def reprocess(source: Annotated[str, typer.Argument(help="Source id (in the sources directory) or YAML path.")],
              ) -> None:
    """Re-extract a source's archived WARCs with its current rules and rebuild its programme history.

    Fetches nothing; the rebuilt events are marked backfill and never alerted.
    Example: listwatch programs reprocess demo-mofcom.
    """
    from archive.programs.reprocess import reprocess as run
    from scheduler.cli.crawl import _resolve_source

    settings = settings_or_exit()
    src = _resolve_source(source, settings)
    catalog, storage = opened_archive(settings)
    result = run(catalog, src, spool_dir=settings.spool_dir, store_dir=settings.store_path,
                 data_dir=settings.data_dir, storage=storage,
                 missing_runs_to_remove=settings.scheduler.missing_runs_to_remove)
    events = ", ".join(f"{n} {kind}" for kind, n in sorted(result.events.items())) or "no events"
    console.print(f"{src.id}: {len(result.runs)} run(s) from {result.warc_files} WARC file(s) replayed; "
                  f"{events} (backfill, not alerted)")


@app.command()
def rekey(source: Annotated[str, typer.Argument(help="Source id (in the sources directory) or YAML path.")],
          also_host: Annotated[list[str] | None, typer.Option(
              "--also-host", help="A former host of the site (repeatable): its URLs become the site's own keys.")]
          = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")]
          = False) -> None:
    """Rewrite a source's programme keys to the current, host-independent form, keeping all history.

    Programmes whose keys now coincide (one page seen under two ports or hosts) are merged into the
    oldest, versions and events included. Example: ``listwatch programs rekey demo-mofcom``.
    """
    from archive.programs.rekey import rekey as run
    from scheduler.cli.crawl import _resolve_source

    settings = settings_or_exit()
    src = _resolve_source(source, settings)
    result = run(opened_catalog(settings), src, also_host or [], dry_run=dry_run)
    verb = "would re-key" if dry_run else "re-keyed"
    console.print(f"{src.id}: {verb} {result.rekeyed} of {result.programmes} programme(s), "
                  f"merging {result.merged} duplicate(s)")
    for old, new in result.examples:
        console.print(f"  {old} → {new}")
