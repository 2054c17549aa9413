"""The "writing sources" guide, generated from the source schema (``crawlers/sources.py``).

Each section of a source file gets its model's docstring, then every field with its type, default and an
example. Examples come from the source files in the repository (the demo's, the deployment examples' and
the real-page corpus'), else from :data:`EXAMPLES`. ``tests/test_docs.py`` checks that the committed
``crawlers/SOURCES.md`` is exactly what this module generates, so the guide cannot drift from the code:

    python -m crawlers.guide > crawlers/SOURCES.md
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from crawlers.sources import Rule, Source

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIRS = ("crawlers/demo/sources", "infra/sources", "tests/corpus/sources")
# Fields no source file in the repository sets yet: an example each (a new field needs one here or in a file).
EXAMPLES: dict[str, Any] = {
    "items.comments": True,
    "items.script": "listData",
    "items.include": {"title": "培训|研修"},
    "items.exclude": {"title": "结果公示"},
    "items.key_params_drop": ["utm_source", "spm"],
    "items.selector.xpath": "//ul[@class='list']/li",
    "items.selector.const": "fixed text",
    "items.selector.many": True,
    "items.selector.default": "",
    "items.selector.missing_year": "capture",
    "items.selector.regex": r"第(\d+)期",
    "pagination.first": 0,
    "pagination.page_size": 20,
    "pagination.max_pages": 50,
    "pagination.param": "pageNo",
    "detail.render": True,
    "detail.wait_for": "div.content",
    "detail.attachments.extensions": ["pdf", "doc", "docx"],
    "detail.table.label": "th",
    "detail.table.value": "td",
    "render.timeout": 45,
    "render.screenshot": False,
    "render.wait_until": "networkidle",
    "encoding": "gb18030",
    "politeness.obey_robots": True,
    "limits.max_response_bytes": 20000000,
    "limits.max_seconds": 600,
    "limits.retries": 3,
    "limits.timeout": 20,
    "hook": "mysite.hooks:fix_titles",
    "schedule.quick": "15m",
    "schedule.full": "0 3 * * *",
    "schedule.quick_pages": 2,
    "schedule.jitter": 60,
    "schedule.enabled": False,
    "fetch.hosts": ["files.example.gov.cn", "*.cdn.example.gov.cn"],
    "fetch.internal": ["intranet.example:8080"],
    "headers": {"Authorization": "Bearer ${MINISTRY_TOKEN}"},
    "pagination.end": {"regex": "暂无"},
    "detail.format": "html",
}


def _models(annotation: Any) -> list[type[BaseModel]]:
    found = [a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)]
    for arg in get_args(annotation):
        found += [m for m in _models(arg) if m not in found]
    return found


def type_name(annotation: Any) -> str:
    """A type as a source-file writer thinks of it: ``text``, ``number``, ``list of text``, ``one of: a, b``."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(get_args(annotation)[0])
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        parts = [type_name(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(parts) + (" (optional)" if type(None) in get_args(annotation) else "")
    if origin is list:
        return f"list of {type_name(get_args(annotation)[0])}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"mapping {type_name(key)} → {type_name(value)}"
    names = {str: "text", int: "whole number", float: "number", bool: "true/false", Path: "path"}
    if annotation in names:
        return names[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()}) section"
    return str(annotation)


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section defaults)"
    return f"`{json.dumps(value, ensure_ascii=False)}`" if value is not PydanticUndefined else ""


def _bounds(field: Any) -> str:
    out = []
    for meta in field.metadata:
        for name, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "at least")):
            if getattr(meta, name, None) is not None:
                out.append(f"{sign} {getattr(meta, name)}" + (" item(s)" if name == "min_length" else ""))
        if getattr(meta, "pattern", None):
            out.append(f"matches `{meta.pattern}`")
    return "; ".join(out)


def _walk_examples(data: Any, prefix: str, found: dict[str, Any]) -> None:
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        path = f"{prefix}{key}"
        found.setdefault(path, value)
        if isinstance(value, dict):
            _walk_examples(value, f"{path}.", found)
            if path in ("items.fields", "detail.fields"):   # rules under a field name: examples for rule fields
                for rule in value.values():
                    rule = {"css": rule} if isinstance(rule, str) else rule
                    _walk_examples(rule, f"{path.rsplit('.', 1)[0]}.selector.", found)


def file_examples() -> dict[str, Any]:
    """The first value each field path takes in the repository's source files (``items.selector.css``…)."""
    found: dict[str, Any] = {}
    for folder in EXAMPLE_DIRS:
        for path in sorted((ROOT / folder).glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            _walk_examples(data, "", found)
            items = (data or {}).get("items") or {}
            selector = items.get("selector")
            _walk_examples({"css": selector} if isinstance(selector, str) else selector, "items.selector.", found)
    return found


def _example(path: str, known: dict[str, Any], model: type[BaseModel] | None = None) -> str:
    field = path.rsplit(".", 1)[-1]
    # a rule's fields read the same wherever the rule is used: any selector or field rule is an example
    candidates = [path, f"items.selector.{field}"] if model is Rule else [path]
    for candidate in candidates:
        if candidate in known:
            value = known[candidate]
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            return "`" + text.replace("|", "\\|").replace("\n", " ") + "`"
    for candidate in candidates:
        if candidate in EXAMPLES:
            return _example(candidate, {candidate: EXAMPLES[candidate]})
    return ""


def sections() -> Iterator[tuple[list[str], type[BaseModel]]]:
    """(every path prefix it is used at, model) for the top level and each section, first seen first."""
    uses: dict[type[BaseModel], list[str]] = {}
    queue: list[tuple[str, type[BaseModel]]] = [("", Source)]
    while queue:
        prefix, model = queue.pop(0)
        if model in uses:
            uses[model].append(prefix)
            continue
        uses[model] = [prefix]
        for name, field in model.model_fields.items():
            queue += [(f"{prefix}{name}.", sub) for sub in _models(field.annotation)]
    yield from ((prefixes, model) for model, prefixes in uses.items())


def _is_section(field: Any) -> bool:
    return bool(_models(field.annotation)) and get_origin(field.annotation) is not dict


def fields_without_example() -> list[str]:
    """Fields the guide cannot show an example for (the docs test requires none)."""
    known = file_examples()
    return [f"{prefixes[0]}{name}" for prefixes, model in sections() for name, field in model.model_fields.items()
            if not _is_section(field) and not _example(f"{prefixes[0]}{name}", known, model)]


def _prose(doc: str) -> list[str]:
    """A docstring as Markdown: paragraphs joined, list items kept, reST literals as code."""
    out: list[str] = []
    for block in doc.strip().replace("``", "`").split("\n\n"):
        lines = [line.strip() for line in block.splitlines()]
        items: list[str] = []
        for line in lines:
            if line.startswith("- ") or not items:
                items.append(line)
            else:
                items[-1] += " " + line
        out += [*items, ""]
    return out


def render() -> str:
    known = file_examples()
    out = ["# Writing sources", "",
           "<!-- generated by `python -m crawlers.guide > crawlers/SOURCES.md` from crawlers/sources.py; "
           "tests/test_docs.py keeps it current -->", "",
           "One YAML file per watched listing, in the sources directory (`sources_dir`). Check a file with",
           "`listwatch sources check FILE`; start one from a listing's URL with `listwatch sources new URL`.",
           "`${NAME}` is replaced by the environment variable NAME. A rule given as a bare string is a CSS",
           "selector (`title: \"a::text\"` is `title: {css: \"a::text\"}`). Recipes for the shapes government",
           "sites take: `crawlers/COOKBOOK.md`; working files: `crawlers/demo/sources/`, `tests/corpus/sources/`.",
           ""]
    for prefixes, model in sections():
        where = ", ".join(f"`{p.rstrip('.')}`" for p in prefixes if p) or "the top level of a source file"
        out += [f"## {model.__name__}", "", f"Used at: {where}.", ""]
        if model.__doc__ and model.__doc__ != BaseModel.__doc__:
            out += _prose(model.__doc__)
        out += ["| field | type | default | limits | example |", "| --- | --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            example = "see its section" if _is_section(field) else _example(f"{prefixes[0]}{name}", known, model)
            out.append(f"| `{name}` | {type_name(field.annotation)} | {_default(field)} | {_bounds(field)} | "
                       f"{example} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
