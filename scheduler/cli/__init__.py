"""The listwatch command: thin wrappers over the Python API, one example in each docstring.

Each command group lives in its own module and registers here. Every command also takes the loudness
options (-v, -q, --log-level, --log-format) from :mod:`scheduler.cli.output`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from scheduler.alerts.redact import install_log_redaction
from scheduler.cli import alerts, archive, crawl, events, init_cmd, output, programs, retrieve, sources_new, sourcetest
from scheduler.cli import daemon as daemon_cli
from scheduler.cli import demo as demo_cli

install_log_redaction()   # every command, the crawl subprocess included: no password or token in a log line
app = typer.Typer(help="Watch programme listings, archive every visit as WARC, report what changed.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def _version(value: bool) -> None:
    if value:
        print(f"listwatch {output.version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: output.Verbose = 0, quiet: output.Quiet = 0, log_level: output.Level = None,
    log_format: output.Format = None,
) -> None:
    """Watch programme listings, archive every visit as WARC, report what changed.

    Start with: listwatch demo (then listwatch programs list), or listwatch init DIR for your own project.
    """
    output.take(verbose, quiet, log_level, log_format)


app.registered_commands += crawl.app.registered_commands
app.registered_commands += retrieve.app.registered_commands
app.registered_commands += daemon_cli.app.registered_commands
app.registered_commands += demo_cli.app.registered_commands
app.registered_commands += init_cmd.app.registered_commands
app.registered_commands += events.app.registered_commands
crawl.sources_app.registered_commands += sources_new.app.registered_commands
crawl.sources_app.command("test")(sourcetest.sources_test)
app.add_typer(crawl.sources_app, name="sources")
app.add_typer(alerts.app, name="alerts", help="Alert subscriptions, delivery and Atom feeds.")
app.add_typer(archive.app, name="archive", help="The stored archive: sync, fixity audits, reindex, status.")
app.add_typer(programs.app, name="programs", help="Programme records: list, search, history, export, reprocess.")
output.add_loudness(app)   # keep last: every command registered above gets -v/-q/--log-level/--log-format
