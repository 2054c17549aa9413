"""Retrieval commands (mounted at top level): captures, get, screenshot, export, replay, serve.

Examples::

    listwatch captures 'http://127.0.0.1:8000/mofcom/*' --from 2026 --output json
    listwatch get urn:uuid:0f3c… --payload -o page.html
    listwatch screenshot http://127.0.0.1:8000/academy/index.html -o shot.png
    listwatch export --source demo-mofcom --from 202603 -o mofcom.wacz
    listwatch replay --port 8480
    listwatch serve
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from archive.catalog import Catalog
from archive.cdx import QueryError, format_entries, query_captures
from archive.retrieval import NotFound, RecordIntegrityError, read_payload, read_record, screenshot
from archive.storage import Storage, StorageError
from archive.wacz import ExportError, export_wacz
from scheduler.cli.common import check_choice, check_source, console, err, fail, opened_archive, opened_catalog
from scheduler.cli.common import settings_or_exit as _settings

app = typer.Typer()


def _open() -> tuple[Catalog, Storage]:
    return opened_archive(_settings())


def _fail(exc: Exception) -> typer.Exit:
    code = {QueryError: 2, NotFound: 1, ExportError: 1}.get(type(exc), 3)
    err.print(f"[red]error:[/] {exc}")
    return typer.Exit(code)


def _emit(data: bytes, out: Path | None, example: str) -> None:
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise _unwritable(out, exc, example) from None
        err.print(f"wrote {len(data):,} bytes to {out}")


def _unwritable(out: Path, exc: OSError, example: str) -> typer.Exit:
    """-o names a directory or a place that cannot be written: say so in words, nothing half-written."""
    if out.is_dir():
        return fail("-o", f"{str(out)!r} is a directory; name the file to write in it, e.g. {out / example}")
    return fail("-o", f"cannot write {str(out)!r}: {exc.strerror or exc}", code=1)


@app.command()
def captures(
    url: Annotated[str, typer.Argument(help="URL; a trailing * means prefix, a leading *. means domain.")],
    match: Annotated[str, typer.Option("--match", help="exact, prefix, host or domain.")] = "exact",
    from_: Annotated[str | None, typer.Option("--from", help="Earliest: 2026-11-30, …T08:00Z or digits.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Latest: 2026-11-30, …T08:00Z or digits.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many captures.")] = None,
    output: Annotated[str, typer.Option(help="cdxj, json (NDJSON) or text.")] = "cdxj",
    filters: Annotated[list[str] | None, typer.Option("--filter", help="pywb filter, e.g. '=status:200'.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
) -> None:
    """List captures of a URL (pywb CDX semantics); dates may be ISO (2026-11-30) or CDX digits.

    Example: listwatch captures 'http://127.0.0.1:8765/mofcom/*' --from 2026-11-30 --output text
    """
    output = "json" if as_json else output
    check_choice("--output", output, ("cdxj", "json", "text"))
    catalog, _ = _open()
    lines = 0
    try:
        for line in format_entries(query_captures(catalog, url, match=match, from_=from_, to=to, limit=limit,
                                                  filters=filters or ()), output):
            print(line)
            lines += 1
    except (QueryError, NotFound) as exc:
        raise _fail(exc) from None
    if not lines:   # an empty answer is still an answer (exit 0), but say so rather than print nothing
        err.print(f"no captures of {url} ({match} match{', in that time range' if from_ or to else ''}); "
                  "a trailing * lists every URL under a prefix, e.g. 'http://host/path/*'", highlight=False,
                  soft_wrap=True)


@app.command()
def get(
    record_id: Annotated[str, typer.Argument(help="WARC-Record-ID, with or without <>.")],
    payload: Annotated[bool, typer.Option("--payload", help="Only the HTTP payload (revisits resolved).")] = False,
    out: Annotated[Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")] = None,
) -> None:
    """Fetch one record (digest-checked) from the store. Example: listwatch get urn:uuid:… -o rec.warc."""
    catalog, storage = _open()
    try:
        data = read_payload(catalog, storage, record_id).body if payload else read_record(catalog, storage, record_id)
    except (NotFound, RecordIntegrityError, StorageError) as exc:
        raise _fail(exc) from None
    _emit(data, out, "page.html" if payload else "record.warc")


@app.command("screenshot")
def screenshot_cmd(
    url: Annotated[str, typer.Argument(help="The rendered page's URL.")],
    out: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")],
    at: Annotated[str | None, typer.Option(help="Nearest this timestamp (default: latest).")] = None,
) -> None:
    """Save a rendered page's screenshot. Example: listwatch screenshot URL -o shot.png."""
    catalog, storage = _open()
    try:
        _emit(screenshot(catalog, storage, url, at), out, "shot.png")
    except (QueryError, NotFound, RecordIntegrityError, StorageError) as exc:
        raise _fail(exc) from None


@app.command()
def export(
    out: Annotated[Path, typer.Option("-o", "--output", help="The .wacz file to write.")],
    source: Annotated[str | None, typer.Option("--source", help="Source id.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="URL prefix.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Earliest: 2026-11-30, …T08:00Z or digits.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Latest: 2026-11-30, …T08:00Z or digits.")] = None,
    sign: Annotated[str | None, typer.Option(help="URL of an authsign signing server.")] = None,
) -> None:
    """Export captures as a WACZ 1.1.1 package (validated by wacz validate).

    Example: listwatch export --source demo-mofcom -o mofcom.wacz
    """
    if source is None and url is None:
        raise fail("export", "give --source and/or --url")
    check_source(_settings(), source)
    if out.is_dir():
        raise _unwritable(out, IsADirectoryError(out), f"{source or 'export'}.wacz")
    catalog, storage = _open()
    try:
        path = export_wacz(catalog, storage, out, source_id=source, url_prefix=url, from_=from_, to=to, sign=sign)
    except (QueryError, ExportError, RecordIntegrityError, StorageError) as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _unwritable(out, exc, f"{source or 'export'}.wacz") from None
    console.print(f"wrote [bold]{path}[/] ({path.stat().st_size:,} bytes)")


@app.command()
def replay(
    port: Annotated[int | None, typer.Option(help="Port (default replay.port).", min=1, max=65535)] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    refresh: Annotated[float, typer.Option(help="Regenerate the index every N seconds (0 = never).")] = 60.0,
) -> None:
    """Browse the archive with pywb. Example: listwatch replay --port 8480."""
    from scheduler.replay import ReplayError, serve

    settings = _settings()
    catalog = opened_catalog(settings)
    base = f"http://{host}:{port if port is not None else settings.replay.port}/archive/"
    console.print(f"pywb replay of the archive at [bold]{base}[/]<timestamp>/<url> (Ctrl-C stops)")
    try:
        raise typer.Exit(serve(settings, catalog, host=host, port=port, refresh=refresh))
    except ReplayError as exc:
        raise _fail(exc) from None


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default api.port).", min=1, max=65535)] = None,
    host: Annotated[str | None, typer.Option(help="Address (default api.host).")] = None,
) -> None:
    """Run the HTTP API (uvicorn). Example: LISTWATCH_API__TOKEN=… listwatch serve."""
    import uvicorn

    from scheduler.api import ApiConfigError, create_app

    settings = _settings()
    try:
        application = create_app(settings)
    except ApiConfigError as exc:
        raise _fail(exc) from None
    uvicorn.run(application, host=host or settings.api.host, port=port or settings.api.port, log_level="info")
