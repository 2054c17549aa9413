"""Bad input gets a clear message, the crawl carries on, and every byte received is archived."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from crawlers.demo.site import DemoSite
from tests.archive_tools import warcio_check
from tests.conftest import ROOT, crawl_sources, run_listwatch

FAULTS = Path(__file__).parent / "sources" / "faults.yaml"


def test_faulty_pages_are_reported_clearly_and_the_crawl_completes(tmp_path: Path, demo_site: DemoSite) -> None:
    crawl = crawl_sources([FAULTS], data_dir=tmp_path, site=demo_site)["faults"]
    report = crawl.report
    problems = {p["url"].rsplit("/", 1)[1]: p for p in report["problems"]}
    assert problems["huge.bin"]["kind"] == "too-large"
    assert "larger than download max size" in problems["huge.bin"]["message"]
    assert problems["loop"]["kind"] == "redirect-loop"
    assert problems["stall.html"]["kind"] == "timeout"
    assert problems["bad-gzip.html"]["kind"] == "corrupt-body"
    assert "truncated" in problems["bad-gzip.html"]["message"] or "corrupt" in problems["bad-gzip.html"]["message"]
    challenged = {p["url"].rsplit("/", 1)[1]: p["message"] for p in report["challenges"]}
    assert "jiasule" in challenged["challenge.html"] and "412" in challenged["challenge.html"]
    assert "cloudflare" in challenged["cf.html"]
    assert report["stop_reason"] == "finished"
    assert not report["complete"], "a crawl with failures and challenges must not count as complete"

    # The flaky page answered 503 once, then its content was crawled; the charset traps decoded right.
    from_pages = {i["listing_url"].rsplit("/", 1)[1] for i in crawl.items}
    assert {"flaky.html", "wrong-charset.html", "no-charset.html"} <= from_pages
    titles = {i["fields"]["title"] for i in crawl.items}
    assert "2026年发展中国家数字经济官员研修班" in titles
    assert not any("\ufffd" in t for t in titles)
    assert demo_site.hits["/faults/flaky.html"] == 2

    # Challenge pages, the 503 and the corrupt body are kept as evidence in valid WARCs.
    warcio_check(crawl.warcs)
    from warcio.archiveiterator import ArchiveIterator

    statuses = []
    for path in crawl.warcs:
        with path.open("rb") as fh:
            statuses += [(r.rec_headers.get_header("WARC-Target-URI").rsplit("/", 1)[1],
                          r.http_headers.get_statuscode()) for r in ArchiveIterator(fh) if r.rec_type == "response"]
    assert ("challenge.html", "412") in statuses
    assert ("flaky.html", "503") in statuses and ("flaky.html", "200") in statuses
    assert ("bad-gzip.html", "200") in statuses


def test_malformed_source_file_names_file_field_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Bad Id\nname: x\nstart_urls: [ftp://example.org/]\nitems:\n  selector: li\n"
                   "  fields: {title: 'a::text'}\n  key: url\npagination: {kind: template}\nrender: {mdoe: x}\n",
                   encoding="utf-8")
    done = run_listwatch(["sources", "check", str(bad)], data_dir=tmp_path)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert str(bad) in message
    for expected in ("id: String should match pattern", "start_urls: 'ftp://example.org/' is not an absolute",
                     "items: key 'url' is not one of the fields", "pagination: pagination kind 'template' needs",
                     "render.mdoe: unknown setting"):
        assert expected in message, message
    crawl = run_listwatch(["crawl", str(bad)], data_dir=tmp_path)
    assert crawl.returncode == 2 and "Traceback" not in crawl.stderr


def test_unset_environment_variable_in_source_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "env.yaml"
    src.write_text("id: env\nname: x\nstart_urls: ['${NO_SUCH_LISTWATCH_VAR}/']\nformat: feed\n", encoding="utf-8")
    done = run_listwatch(["sources", "check", str(src)], data_dir=tmp_path)
    assert done.returncode == 1
    assert "environment variable NO_SUCH_LISTWATCH_VAR is not set" in " ".join(done.stderr.split())


def test_a_killed_crawl_leaves_no_closed_warc_that_fails_check(tmp_path: Path, demo_site: DemoSite) -> None:
    stall = tmp_path / "stall.yaml"
    stall.write_text(FAULTS.read_text(encoding="utf-8").replace("timeout: 3", "timeout: 60"), encoding="utf-8")
    env_args = ["crawl", str(stall)]
    import os

    env = {**os.environ, "LISTWATCH_DATA_DIR": str(tmp_path), "LISTWATCH_DEMO_URL": demo_site.url,
           "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml")}
    proc = subprocess.Popen([sys.executable, "-m", "scheduler", *env_args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spool = tmp_path / "spool" / "faults"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(spool.glob("*.open")):
        time.sleep(0.1)
    while time.monotonic() < deadline and demo_site.hits["/faults/flaky.html"] < 2:
        time.sleep(0.1)  # wait until several records have been written
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert list(spool.glob("*.warc.gz.open")), "the unfinished WARC should keep its .open name"
    assert not list(spool.glob("*.warc.gz")), "no file may carry a closed name before it is complete"


def _variant(tmp_path: Path, name: str, extra: str) -> Path:
    text = (ROOT / "crawlers" / "demo" / "sources" / "tenders.yaml").read_text(encoding="utf-8")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("id: demo-tenders", f"id: {name}") + extra, encoding="utf-8")
    return path


def test_a_source_hook_post_processes_items(tmp_path: Path, demo_site: DemoSite) -> None:
    source = _variant(tmp_path, "hooked", "hook: tests.sample_hooks:upper\n")
    crawl = crawl_sources([source], data_dir=tmp_path, site=demo_site)["hooked"]
    assert crawl.items and all(i["fields"]["title"].startswith("HOOK:") for i in crawl.items)
    assert crawl.report["complete"]


def test_a_failing_hook_is_reported_and_the_crawl_is_incomplete(tmp_path: Path, demo_site: DemoSite) -> None:
    source = _variant(tmp_path, "broken", "hook: tests.sample_hooks:broken\n")
    crawl = crawl_sources([source], data_dir=tmp_path, site=demo_site)["broken"]
    kinds = {p["kind"] for p in crawl.report["problems"]}
    assert "extraction-error" in kinds
    assert "boom" in " ".join(p["message"] for p in crawl.report["problems"])
    assert not crawl.report["complete"]


def test_crawl_without_capture_still_extracts(tmp_path: Path, demo_site: DemoSite) -> None:
    done = run_listwatch(["crawl", "--json", "--no-capture", str(ROOT / "crawlers/demo/sources/tenders.yaml")],
                         data_dir=tmp_path, site=demo_site)
    import json

    [report] = json.loads(done.stdout)
    assert report["items"] == 19 and report["warc_files"] == [] and report["complete"]


def test_attachment_over_the_size_cap_is_reported_and_not_kept(tmp_path: Path, demo_site: DemoSite) -> None:
    text = (ROOT / "crawlers/demo/sources/mofcom.yaml").read_text(encoding="utf-8")
    source = tmp_path / "capped.yaml"
    capped = text.replace("id: demo-mofcom", "id: capped").replace("max_bytes: 10000000", "max_bytes: 1000000")
    source.write_text(capped, encoding="utf-8")
    crawl = crawl_sources([source], data_dir=tmp_path, site=demo_site)["capped"]
    too_large = [p for p in crawl.report["problems"] if p["kind"] == "too-large"]
    assert [p["url"].rsplit("/", 1)[1] for p in too_large] == ["1002.pdf"]
    assert too_large[0]["role"] == "attachment"
    assert crawl.report["complete"], "an oversized attachment does not make the listing incomplete"
    item = next(i for i in crawl.items if i["key"].endswith("/1002.html"))
    assert any(a["url"].endswith("1002.pdf") for a in item["attachments"])
