"""Reading source files: ``${NAME}`` environment substitution, YAML, validation into a ``Source``, and errors
that name the file, the field and the problem.

``Source`` itself (the schema and its validators) is :mod:`crawlers.sources`, which re-exports ``SourceError``,
``load_source(s)`` and ``describe_errors``, where callers have always found them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

if TYPE_CHECKING:
    from crawlers.sources import Source

_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)\}")


class SourceError(ValueError):
    """A source file cannot be used; the message names the file, the field and the problem."""


def expand_env(text: str, path: Path) -> str:
    """Replace ``${NAME}`` with the environment variable NAME (a clear error if it is unset).

    Only in YAML content: a ``${NAME}`` inside a comment is left as it is (and never required)."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SourceError(f"{path}: uses ${{{name}}} but the environment variable {name} is not set")
        return os.environ[name]

    lines = []
    for line in text.splitlines(keepends=True):
        cut = comment_start(line)
        lines.append(_ENV_REF.sub(sub, line[:cut]) + line[cut:])
    return "".join(lines)


def comment_start(line: str) -> int:
    """Where a YAML comment starts on this line (``#`` at the start or after a space, outside quotes)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'" and (i == 0 or line[i - 1] in " \t:[{,-"):
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
    return len(line)


def load_source(path: Path) -> Source:
    from crawlers.sources import Source  # here, not at the top: crawlers.sources imports this module

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read source file: {exc}") from None
    try:
        data = yaml.safe_load(expand_env(text, path))
    except yaml.YAMLError as exc:
        raise SourceError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path}: expected a mapping of source settings, got {type(data).__name__}")
    try:
        return Source.model_validate(data)
    except ValidationError as exc:
        raise SourceError(f"{path}: {describe_errors(exc)}") from None


_BOUND_ERRORS = {"less_than_equal", "less_than", "greater_than", "greater_than_equal", "finite_number",
                 "int_parsing", "float_parsing", "int_from_float"}


def describe_errors(exc: ValidationError) -> str:
    """pydantic errors as 'field.path: problem' lines an operator can act on."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        elif err["type"] in _BOUND_ERRORS:
            message += f" (got {err['input']!r})"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def load_sources(directory: Path, errors: list[SourceError] | None = None) -> dict[str, Source]:
    """Every ``*.yaml``/``*.yml`` in ``directory``, keyed by source id (ids must be unique).

    With ``errors`` given, a file that cannot be used is an error for that file only: it is appended there
    and the other sources load; without it the first error is raised."""
    sources: dict[str, Source] = {}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        try:
            source = load_source(path)
            if source.id in sources:
                raise SourceError(f"{path}: source id {source.id!r} is already used by another file")
        except SourceError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        sources[source.id] = source
    return sources
