"""A listwatch project on disk: ``listwatch.yaml`` (generated from the settings module) and ``sources/``.

``listwatch init`` writes a commented settings file naming every setting with its default and meaning,
and example sources (one per listing shape, written against the demo site). ``listwatch demo`` writes
the demo's sources and a settings file the same way, so the demo leaves a project that ``crawl``,
``run``, ``programs`` and ``serve`` use as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from scheduler.settings import Settings

DEMO_PORT = 8765
DEMO_SOURCES = Path(__file__).resolve().parents[1] / "crawlers" / "demo" / "sources"
MARKER = "# written by listwatch"   # files starting with this line may be rewritten by listwatch


def _scalar(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = "********"
    if isinstance(value, Path):
        value = str(value)
    text: str = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _lines(model: type[BaseModel], values: dict[str, Any], indent: str) -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            chosen = values.get(name) or {}
            doc = " ".join((annotation.__doc__ or "").split())
            out.append("")
            if doc:
                out.append(f"{indent}# {doc}")
            out.append(f"{indent}{'' if chosen else '# '}{name}:")
            out += _lines(annotation, chosen, indent + "  ")
            continue
        out.append(f"{indent}# {field.description or ''}")
        if name in values:
            out.append(f"{indent}{name}: {_scalar(values[name])}")
        else:
            out.append(f"{indent}# {name}: {_scalar(field.get_default(call_default_factory=True))}")
    return out


def settings_yaml(values: dict[str, Any] | None = None, title: str = "listwatch settings") -> str:
    """Every setting of :class:`Settings`, commented out at its default unless ``values`` sets it."""
    header = [MARKER, f"# {title}: every setting, its meaning, and its default (commented out).",
              "# Uncomment a line to change it. LISTWATCH_<NAME> environment variables win over this file",
              "# (LISTWATCH_STORAGE__BUCKET=… for nested ones). Generated from scheduler/settings.py.", ""]
    return "\n".join([*header, *_lines(Settings, values or {}, "")]) + "\n"


def demo_sources(base_url: str) -> dict[str, str]:
    """The demo site's source files with its URL filled in, keyed by file name (``demo-mofcom.yaml``)."""
    out = {}
    for path in sorted(DEMO_SOURCES.glob("*.yaml")):
        text = path.read_text(encoding="utf-8").replace("${LISTWATCH_DEMO_URL}", base_url.rstrip("/"))
        source_id = yaml.safe_load(text)["id"]
        out[f"{source_id}.yaml"] = f"{MARKER} (from crawlers/demo/sources/{path.name})\n{text}"
    return out


def write_if_ours(path: Path, text: str) -> bool:
    """Write ``path`` unless it exists and was not written by listwatch; True when written."""
    if path.exists():
        current = path.read_text(encoding="utf-8", errors="replace")
        if current == text:
            return True
        if not current.startswith(MARKER):
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
