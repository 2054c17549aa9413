"""How loud a command is: -v/-q/--log-level/--log-format on every command, --version.

Interactive commands show warnings by default; -v adds progress messages (INFO), -vv or
--log-level debug everything. Library chatter (Scrapy's settings and middleware dumps, Alembic's
plugin and migration lines, the Playwright handler's start-up) appears only at DEBUG, whatever the
level: it says nothing about the crawl itself. run (the daemon) defaults to the log_level
setting instead, since its log is an operator's record.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, get_args

import typer
from typer.core import TyperArgument, TyperCommand

from scheduler import logs

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")


@dataclass
class Loudness:
    """What the user asked for on the command line (None: not given)."""

    verbosity: int = 0
    level: str | None = None
    fmt: str | None = None

    def effective(self, default: str = "WARNING") -> str:
        """--log-level wins; otherwise each -v steps down from default, each -q up."""
        if self.level:
            return self.level.upper()
        inherited = os.environ.get("LISTWATCH_CLI_LOG_LEVEL")
        if inherited and not self.verbosity:
            return inherited.upper()
        order = ["DEBUG", "INFO", "WARNING", "ERROR"]
        start = order.index(default.upper()) if default.upper() in order else 2
        return order[max(0, min(len(order) - 1, start - self.verbosity))]


loudness = Loudness()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (a live progress display swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def apply(default: str = "WARNING") -> str:
    """Configure the root logger from the command line; returns the level chosen."""
    level = loudness.effective(default)
    handler = _StderrHandler()
    handler.setFormatter(logs.JsonFormatter() if loudness.fmt == "json" else logs.TextFormatter())
    handler.addFilter(logs.ContextFilter())
    handler.addFilter(logs.ChatterFilter(logging.getLevelName(level)))
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # crawl subprocesses and the daemon's children inherit the choice
    if loudness.level or loudness.verbosity:
        os.environ["LISTWATCH_CLI_LOG_LEVEL"] = level
    return level


Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True, show_default=False,
                                      help="More output: -v progress messages, -vv everything (debug).")]
Quiet = Annotated[int, typer.Option("-q", "--quiet", count=True, show_default=False, help="Less output: errors only.")]
Level = Annotated[str | None, typer.Option("--log-level", metavar="LEVEL",
                                           help=f"Log level: {', '.join(LEVELS)} (overrides -v/-q).")]
Format = Annotated[str | None, typer.Option("--log-format", metavar="FORMAT", help="Log lines as text or json.")]
_NAMES = ("lw_verbose", "lw_quiet", "lw_log_level", "lw_log_format")


def take(verbose: int = 0, quiet: int = 0, level: str | None = None, fmt: str | None = None) -> None:
    """Record what the command line asked for, check it, and configure logging."""
    if level is not None and level.lower() not in LEVELS:
        raise _bad("--log-level", level, LEVELS)
    if fmt is not None and fmt.lower() not in FORMATS:
        raise _bad("--log-format", fmt, FORMATS)
    loudness.verbosity += verbose - quiet
    loudness.level = level.lower() if level else loudness.level
    loudness.fmt = fmt.lower() if fmt else loudness.fmt
    apply()


def _bad(option: str, value: str, valid: tuple[str, ...]) -> typer.Exit:
    print(f"{option}: {value!r} is not valid; valid: {', '.join(valid)}", file=sys.stderr)
    return typer.Exit(2)


def with_loudness(func: Callable[..., Any]) -> Callable[..., Any]:
    """func with the loudness options added to its signature (Typer reads the signature)."""
    signature = inspect.signature(func, eval_str=True)
    if "lw_verbose" in signature.parameters:
        return func
    kinds = inspect.Parameter.KEYWORD_ONLY
    extra = [inspect.Parameter(name, kinds, annotation=kind, default=default)
             for name, kind, default in zip(_NAMES, (Verbose, Quiet, Level, Format), (0, 0, None, None), strict=True)]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        take(*(kwargs.pop(name) for name in _NAMES))
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if type(exc).__name__ != "CatalogBusy":   # by name: no database import for commands that never fail
                raise
            print(f"listwatch: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None

    params = list(signature.parameters.values())
    plain_metavars(params)
    wrapper.__doc__ = (func.__doc__ or "").replace("``", "")   # help is plain text: no reST literals
    wrapper.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*params, *extra]}
    return wrapper


def plain_metavars(params: Iterable[inspect.Parameter]) -> None:
    """Name each value in help as NAME/N/PATH instead of Typer's <str>/<list[str]>."""
    from pathlib import Path

    from typer.models import ParameterInfo

    for param in params:
        base, *meta = (getattr(param.annotation, "__metadata__", None) and get_args(param.annotation)) or [None]
        for info in meta:
            if not isinstance(info, ParameterInfo) or info.metavar is not None:
                continue
            kinds = {a for a in (base, *get_args(base)) if isinstance(a, type)}
            if bool in kinds:
                continue
            name = param.name.rstrip("_").upper()
            if kinds & {int, float}:
                name = "N" if name in ("LIMIT", "SAMPLE", "DAY") or len(name) > 8 else name
            elif Path in kinds:
                name = "PATH" if name in ("PATHS", "OUT", "OUTPUT") else name
            info.metavar = name


class PlainArgument(TyperArgument):
    """An argument shown in help by its name alone (SOURCES..., not SOURCES <list[str]>)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


class PlainCommand(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = PlainArgument


def add_loudness(app: typer.Typer) -> None:
    """Give every command of app (and of its sub-apps) the loudness options and plain help."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = PlainCommand
        if info.callback is not None:
            info.callback = with_loudness(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_loudness(group.typer_instance)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("listwatch")
    except PackageNotFoundError:  # running from a checkout without installing it
        return "unknown (not installed)"
