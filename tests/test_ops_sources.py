"""Hardening, issue 8 failure 4: a bad source is refused at load time by the real parsers, and never kills the
daemon; a crafted ``.open`` WARC does not either; a crawl honours its time limit and SIGTERM whatever its delay.

- ``sources check`` refuses ``0 25 * * *`` (APScheduler's own cron parser), ``encoding: hex`` (a bytes-to-bytes
  codec), ``{page}`` in a page template, ``delay: 1e300`` and ``max_pages: 1e9`` (bounds), naming what was typed.
- ``listwatch run`` with bad source files and a crafted ``.open`` WARC of a dead run starts, schedules the good
  source, reports the bad ones (log and ``status``), survives a reload meeting another bad file, quarantines the
  crafted file, and exits 0 on SIGTERM.
- A crawl with the longest allowed delay stops at its ``max_seconds`` and at SIGTERM.
"""

from __future__ import annotations

import gzip
import itertools
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import DEMO_SOURCES, ROOT, run_listwatch
from daemon_support import DaemonProcess, env_for, status_json, wait_for
from sqlalchemy import select
from warc_factory import member_ends, write_spool_warcs

from archive.catalog import open_catalog
from archive.catalog.models import CrawlRun
from archive.catalog.models import Source as SourceRow
from archive.salvage import salvage
from archive.writer import OPEN_SUFFIX
from crawlers.demo.site import DemoSite
from crawlers.source_checks import MAX_DELAY
from crawlers.sources import SourceError, load_source

BASE = """id: {id}
name: test
start_urls: ["http://127.0.0.1:9/list.html"]
items: {{selector: "li", fields: {{url: {{css: "a::attr(href)", type: url}}}}}}
"""

BAD = {
    "cron-hour-25": ("schedule: {full: '0 25 * * *'}", "0 25 * * *"),
    "cron-words": ("schedule: {quick: 'every day'}", "every day"),
    "interval-zero": ("schedule: {full: 0s}", "0s"),
    "hex-codec": ("encoding: hex", "not a text encoding"),
    "unknown-codec": ("encoding: klingon", "unknown encoding"),
    "page-placeholder": ("pagination: {kind: template, template: 'list_{n}_{page}.html'}", "{page}"),
    "page-only": ("pagination: {kind: template, template: 'list_{page}.html'}", "{page}"),
    "bad-brace": ("pagination: {kind: template, template: 'list_{n.html'}", "list_{n.html"),
    "delay-huge": ("politeness: {delay: 1e300}", "1e300"),
    "delay-inf": ("politeness: {delay: .inf}", "politeness.delay"),
    "max-pages-huge": ("limits: {max_pages: 1000000000}", "1000000000"),
    "page-list-huge": ("pagination: {kind: param, max_pages: 1e9}", "pagination.max_pages"),
    "max-seconds-huge": ("limits: {max_seconds: 99999999999}", "limits.max_seconds"),
}


def _write(directory: Path, name: str, extra: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(BASE.format(id=name) + extra + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_values_are_refused_at_load_time_naming_them(tmp_path: Path, name: str) -> None:
    extra, shown = BAD[name]
    with pytest.raises(SourceError) as caught:
        load_source(_write(tmp_path, name, extra))
    assert shown in str(caught.value) and name in str(caught.value)


def test_good_values_still_load(tmp_path: Path) -> None:
    source = load_source(_write(tmp_path, "fine", "encoding: gb18030\nschedule: {quick: '*/15 * * * *', full: 6h}\n"
                                "pagination: {kind: template, template: 'list_{n}.html?{{x}}'}\n"
                                f"politeness: {{delay: {MAX_DELAY}}}"))
    assert source.encoding == "gb18030" and source.pagination.template == "list_{n}.html?{{x}}"


def test_sources_check_refuses_a_cron_hour_of_25(tmp_path: Path) -> None:
    _write(tmp_path, "good", "schedule: {full: '0 3 * * *'}")
    _write(tmp_path, "bad", BAD["cron-hour-25"][0])
    done = run_listwatch(["sources", "check", str(tmp_path)], data_dir=tmp_path / "data")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 25 * * *" in done.stderr and "hour" in done.stderr
    assert "ok" in done.stdout and "good" in done.stdout


def _crafted_open_warc(spool: Path, source_id: str, run_id: str) -> Path:
    """A real WARC whose third record claims a Content-Length that is not a number, left ``.open``."""
    [closed] = write_spool_warcs(spool, source_id, run=run_id, pages=3, max_size=10_000_000)
    data = closed.read_bytes()
    ends = member_ends(data)
    members = [data[start:end] for start, end in itertools.pairwise([0, *ends])]
    inner = gzip.decompress(members[2])
    head, sep, block = inner.partition(b"\r\n\r\n")
    lines = [b"Content-Length: 99999999999999999999999x" if line.lower().startswith(b"content-length:") else line
             for line in head.split(b"\r\n")]
    members[2] = gzip.compress(b"\r\n".join(lines) + sep + block)
    opened = closed.with_name(closed.name + OPEN_SUFFIX)
    opened.write_bytes(b"".join(members))
    closed.unlink()
    return opened


def test_crafted_content_length_is_cut_not_raised(tmp_path: Path) -> None:
    opened = _crafted_open_warc(tmp_path / "spool", "demo-static", "20260105T010203Z-a1b2c3")
    result = salvage(opened)
    assert result.records == 2 and result.quarantined is not None and result.kept is not None


def test_daemon_starts_with_a_bad_source_and_a_crafted_open_warc(tmp_path: Path) -> None:
    data_dir, sources = tmp_path / "data", tmp_path / "sources"
    sources.mkdir()
    good = (DEMO_SOURCES / "mofcom.yaml").read_text(encoding="utf-8") + "\nschedule: {full: 1d, jitter: 0}\n"
    (sources / "mofcom.yaml").write_text(good, encoding="utf-8")
    _write(sources, "bad-cron", BAD["cron-hour-25"][0])
    _write(sources, "bad-codec", BAD["hex-codec"][0])
    run_id = "20260105T010203Z-dead00"
    catalog = open_catalog(f"sqlite:///{data_dir.resolve() / 'catalog.sqlite'}")
    with catalog.session() as session:
        session.add(SourceRow(id="demo-static", name="x", created_at=datetime.now(UTC)))
    with catalog.session() as session:
        session.add(CrawlRun(id=run_id, source_id="demo-static", kind="full", status="running",
                             started_at=datetime.now(UTC), host=socket.gethostname(), pid=2**22 + 7))
    opened = _crafted_open_warc(data_dir / "spool", "demo-static", run_id)
    env = env_for(data_dir, sources, "http://127.0.0.1:9", maintenance_interval=3600)
    daemon = DaemonProcess(env, data_dir / "daemon.log")
    try:
        wait_for(lambda: "scheduler running" in daemon.log.read_text(errors="replace")
                 or daemon.proc.poll() is not None, 60, "the daemon to start")
        assert daemon.proc.poll() is None, daemon.log.read_text(errors="replace")
        _write(sources, "bad-later", BAD["delay-huge"][0])     # a reload meets a bad file: the same
        wait_for(lambda: "bad-later.yaml" in daemon.log.read_text(errors="replace"), 30, "the reload")
        assert daemon.proc.poll() is None
        problem = status_json(env)["sources_problem"]
        assert "0 25 * * *" in problem and "bad-codec.yaml" in problem and "1e300" in problem
    finally:
        code = daemon.terminate()
    log = daemon.log.read_text(errors="replace")
    assert code == 0, log
    assert "scheduled full:demo-mofcom" in log
    assert "bad-cron.yaml" in log and "0 25 * * *" in log and "bad-codec.yaml" in log
    assert not opened.exists() and opened.with_name(opened.name + ".quarantined").exists()
    with catalog.read_session() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None and run.status == "interrupted" and "salvaged" in run.reason
        assert not list(session.scalars(select(CrawlRun).where(CrawlRun.source_id.like("bad%"))))


def _slow_source(tmp_path: Path, seconds: int) -> Path:
    """The demo listing (many pages) with the longest delay a source may set (later keys win in YAML)."""
    text = (DEMO_SOURCES / "mofcom.yaml").read_text(encoding="utf-8")
    path = tmp_path / "slow.yaml"
    path.write_text(text + f"\npoliteness: {{delay: {MAX_DELAY}, concurrency: 1, obey_robots: false}}\n"
                    f"limits: {{max_seconds: {seconds}}}\n", encoding="utf-8")
    return path


def _slow_crawl(tmp_path: Path, site: DemoSite, seconds: int) -> subprocess.Popen[str]:
    source = _slow_source(tmp_path, seconds)
    env = {**os.environ, "LISTWATCH_DATA_DIR": str(tmp_path / "data"), "LISTWATCH_DEMO_URL": site.url,
           "LISTWATCH_SETTINGS": str(tmp_path / "none.yaml")}
    return subprocess.Popen([sys.executable, "-m", "scheduler", "crawl", "--no-capture", str(source)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("stop", ["time-limit", "sigterm"])
def test_a_crawl_with_the_longest_delay_still_stops(tmp_path: Path, demo_site: DemoSite, stop: str) -> None:
    proc = _slow_crawl(tmp_path, demo_site, 4 if stop == "time-limit" else 3600)
    if stop == "sigterm":
        wait_for(lambda: demo_site.hits, 60, "the first request")
        proc.send_signal(signal.SIGTERM)
    try:   # well before the second request would even be due: the delay must not hold the stop back
        out, _ = proc.communicate(timeout=MAX_DELAY - 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the crawl ignored its {stop} with delay {MAX_DELAY} s") from None
    assert demo_site.hits, out
