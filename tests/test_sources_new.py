"""listwatch sources new: a proposed source from a listing page, measured on the demo shapes and real pages."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from crawlers.demo.site import DemoSite
from crawlers.sources import load_source
from scheduler.cli import app
from tests.benchmarks.score_proposals import corpus_cases, demo_cases


def test_sources_new_writes_a_working_file_and_shows_its_items(tmp_path: Path) -> None:
    env = {"LISTWATCH_SETTINGS": str(tmp_path / "none.yaml"), "LISTWATCH_SOURCES_DIR": str(tmp_path / "sources"),
           "COLUMNS": "80"}
    with DemoSite(port=0) as site:
        done = CliRunner().invoke(app, ["sources", "new", f"{site.url}/mofcom/list/index.html", "--id", "ministry"],
                                  env=env)
        assert done.exit_code == 0, done.output
        written = tmp_path / "sources" / "ministry.yaml"
        source = load_source(written)
        assert source.items is not None and source.pagination.kind == "template"
        assert "10 item(s) extracted" in done.output and f"{site.url}/mofcom/detail/" in done.output
        again = CliRunner().invoke(app, ["sources", "new", f"{site.url}/mofcom/list/index.html", "--id", "ministry"],
                                   env=env)
        assert again.exit_code == 2 and "--force" in again.output
        empty = CliRunner().invoke(app, ["sources", "new", f"{site.url}/robots.txt", "-o", str(tmp_path / "x.yaml"),
                                         "--render", "never"], env=env)
        assert empty.exit_code == 1 and "no repeated blocks" in empty.output
    assert yaml.safe_load(written.read_text(encoding="utf-8"))["id"] == "ministry"


def test_proposals_extract_the_right_items_on_static_demo_shapes_and_most_real_pages() -> None:
    demo = demo_cases(browser=False)
    assert len(demo) == 5 and all(c.exact for c in demo), [c for c in demo if not c.exact]
    corpus = corpus_cases()
    share = sum(c.exact for c in corpus) / len(corpus)
    assert len(corpus) >= 20 and share >= 0.65, (share, [c.name for c in corpus if not c.exact])
