"""``listwatch events``: the changes feed in the terminal (what alerts are made of), or as JSON."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from scheduler.cli.common import check_source, console, err, fit, opened_catalog, settings_or_exit

app = typer.Typer()


@app.command()
def events(
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source id.")] = None,
    kind: Annotated[str | None, typer.Option(help="new, changed, missing, removed, reappeared, or a health "
                                                  "condition (failing, blocked, degraded, silent, source_health).")]
    = None,
    since: Annotated[str | None, typer.Option(help="On or after this day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="On or before this day (YYYY-MM-DD).")] = None,
    backfill: Annotated[bool, typer.Option("--backfill", help="Include baseline and reprocessing events.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many events (1–500).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array instead of a table.")] = False,
) -> None:
    """Events newest first: new, changed, missing, removed, reappeared programmes and source health.

    Example: ``listwatch events --kind changed --since 2026-03-01 --json``.
    """
    from scheduler.web.data import BadFilter, EventQuery, list_events

    settings = settings_or_exit()
    check_source(settings, source)
    catalog = opened_catalog(settings)
    try:
        rows, more = list_events(catalog, EventQuery(source=source, kind=kind, since=since, until=until,
                                                     include_backfill=backfill, per_page=limit))
    except BadFilter as exc:
        err.print(f"[red]events:[/] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    # one line per event (title cut to fit), its key and what changed below it: no multi-line cells at 80 columns
    console.print(f"[bold]{len(rows)} event(s), newest first[/]" + (" (more: raise --limit)" if more else ""),
                  highlight=False)
    width = max(console.width, 60)
    sid = max([len(e["source"]) for e in rows] + [6])
    for e in rows:
        what = "; ".join(f"{k}: {v[0]} → {v[1]}" for k, v in e["changes"].items()
                         if isinstance(v, list) and len(v) == 2) or e["summary"]
        head = f"{e['at'][:16].replace('T', ' ')}  {e['kind']:10} {e['source'].ljust(sid)}  "
        console.print(head + fit(e["programme_title"] or e["title"] or "", width - len(head)).rstrip(),
                      highlight=False, markup=False)
        # The key first and whole: with the source it is what `programs show SOURCE KEY` takes.
        key = f"{e['programme_key']}  " if e.get("programme_key") else ""
        console.print("  " + key + fit(what, max(width - 2 - len(key), 10)).rstrip(), style="dim",
                      highlight=False, markup=False)
