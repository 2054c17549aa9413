"""archive.salvage: an ``.open`` WARC cut mid-record, mid-gzip-member, empty, or clean; a writer killed -9 or
stopped by a full disk leaves only whole WARCs (or an ``.open`` one salvage can close)."""

from __future__ import annotations

import gzip
import io
import os
import resource
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from archive_tools import warcio_check
from warc_factory import member_ends, write_spool_warcs
from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord

from archive.background import ThreadedWarcWriter
from archive.records import RecordBuilder
from archive.salvage import good_prefix, open_files, salvage
from archive.writer import OPEN_SUFFIX, RollingWarcWriter


def _open_copy(tmp_path: Path) -> tuple[Path, list[int]]:
    """A one-file WARC renamed back to ``.open``, with the end offsets of its gzip members."""
    [closed] = write_spool_warcs(tmp_path / "spool", pages=6, max_size=10_000_000)
    ends = member_ends(closed.read_bytes())
    opened = closed.with_name(closed.name + OPEN_SUFFIX)
    closed.rename(opened)
    return opened, ends


def test_clean_open_file_is_renamed_whole(tmp_path: Path) -> None:
    opened, ends = _open_copy(tmp_path)
    result = salvage(opened)
    assert result.clean and result.records == len(ends) and result.cut_bytes == 0
    assert result.kept is not None and not opened.exists()
    warcio_check(result.kept)


@pytest.mark.parametrize("where", ["mid-member", "at-member-boundary-plus-junk", "mid-record-header"])
def test_torn_file_keeps_the_complete_prefix(tmp_path: Path, where: str) -> None:
    opened, ends = _open_copy(tmp_path)
    data = opened.read_bytes()
    keep_members = 5
    if where == "mid-member":
        cut = data[: (ends[keep_members - 1] + ends[keep_members]) // 2]
    elif where == "at-member-boundary-plus-junk":
        cut = data[: ends[keep_members - 1]] + b"\x1f\x8b\x08\x00garbage"
    else:  # a complete gzip member whose WARC record is cut short inside: decompresses, but is not whole
        inner = gzip.decompress(data[ends[keep_members - 1]: ends[keep_members]])
        cut = data[: ends[keep_members - 1]] + gzip.compress(inner[: len(inner) // 2])
    opened.write_bytes(cut)
    assert good_prefix(opened) == (ends[keep_members - 1], keep_members)
    result = salvage(opened)
    assert result.records == keep_members and result.cut_bytes == len(cut) - ends[keep_members - 1]
    assert result.kept is not None and result.kept.read_bytes() == data[: ends[keep_members - 1]]
    assert result.quarantined is not None and result.quarantined.read_bytes() == cut
    warcio_check(result.kept)
    assert open_files(tmp_path) == []


def test_tampered_record_stops_the_prefix(tmp_path: Path) -> None:
    opened, ends = _open_copy(tmp_path)
    data = opened.read_bytes()
    inner = bytearray(gzip.decompress(data[ends[2]: ends[3]]))
    inner[-10] ^= 0xFF   # one payload byte flipped: the block digest no longer verifies
    opened.write_bytes(data[: ends[2]] + gzip.compress(bytes(inner)) + data[ends[3]:])
    result = salvage(opened)
    assert result.records == 3 and result.quarantined is not None


@pytest.mark.parametrize("content", [b"", b"\x1f\x8b\x08", None])
def test_nothing_usable_is_quarantined_whole(tmp_path: Path, content: bytes | None) -> None:
    opened, ends = _open_copy(tmp_path)
    data = opened.read_bytes()
    opened.write_bytes(content if content is not None else data[: ends[0]])  # None: warcinfo only
    result = salvage(opened)
    assert result.kept is None and result.quarantined is not None and result.quarantined.exists()
    assert not list(opened.parent.glob("*.warc.gz"))


def test_refuses_a_closed_file(tmp_path: Path) -> None:
    [closed] = write_spool_warcs(tmp_path / "spool", pages=1)
    with pytest.raises(ValueError):
        salvage(closed)


def _in_child(body: Callable[[], int]) -> int:
    """Run ``body`` in a forked child (its limits, signals and death stay out of pytest); its wait status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def _writer(tmp_path: Path, threaded: bool, prefix: str) -> RollingWarcWriter:
    return (ThreadedWarcWriter if threaded else RollingWarcWriter)(tmp_path, prefix=prefix, warcinfo={})


def _written(writer: RollingWarcWriter) -> None:
    while writer.queued:   # the threaded writer: until its queue is on disk
        time.sleep(0.005)


@pytest.mark.parametrize("threaded", [False, True], ids=["writer", "threaded-writer"])
def test_records_written_before_a_kill_survive_it(tmp_path: Path, threaded: bool) -> None:
    """A process killed without clean-up (no close, no exit handlers, no buffer flush) after writing records:
    salvage keeps every one of them. Small records used to sit in Python's write buffer and die with it.
    The crawls' writer (threaded) is killed once its queue is empty: what it wrote survives as well."""

    def crawl() -> int:   # write 5 small response/request groups, then die as kill -9 would
        builder = RecordBuilder()
        writer = _writer(tmp_path, threaded, "killed")
        for i in range(5):
            response = builder.response(f"http://example.org/{i}", 200, [], b"<p>%d</p>" % i)
            request = builder.request(f"http://example.org/{i}", "GET", [], date=builder.now(),
                                      concurrent_to=str(response.rec_headers.get_header("WARC-Record-ID")))
            writer.submit(response, request)
        _written(writer)
        os.kill(os.getpid(), signal.SIGKILL)
        return 1

    status = _in_child(crawl)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    [opened] = tmp_path.glob("*.open")
    result = salvage(opened)
    assert result.records == 1 + 5 * 2 and result.cut_bytes == 0   # warcinfo + every group written
    assert result.kept is not None
    warcio_check(result.kept)


LIMIT = 20_000   # bytes a file may grow to in the "full disk" tests


def _fill(write: Callable[[ArcWarcRecord], None], builder: RecordBuilder) -> bool:
    """Write incompressible records past LIMIT (writes then fail with EFBIG, as on a full disk); True once one
    failed. SIGXFSZ is ignored so that the write fails instead of the process dying."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    for i in range(200):
        try:
            write(builder.resource(f"urn:test:{i}", "application/octet-stream", os.urandom(1500)))
        except OSError:
            return True
    return False


@pytest.mark.parametrize("threaded", [False, True], ids=["writer", "threaded-writer"])
def test_a_full_disk_leaves_only_whole_warcs(tmp_path: Path, threaded: bool) -> None:
    """The file a write failed in is closed with its complete records and its torn tail quarantined; once there
    is room again, writing goes on in a new file. Every closed WARC passes ``warcio check``; the failure reaches
    the caller, never swallowed."""

    def crawl() -> int:
        builder = RecordBuilder()
        writer = _writer(tmp_path, threaded, "full")

        def write(record: ArcWarcRecord) -> None:
            writer.submit(record)
            _written(writer)

        failed = _fill(write, builder)
        if not threaded:   # room again: the synchronous writer goes on (the threaded one stops at its failure)
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            writer.submit(builder.resource("urn:test:after", "text/plain", b"after"))
        try:
            writer.close()
        except OSError:
            failed = True
        return 0 if failed else 2

    assert os.WEXITSTATUS(_in_child(crawl)) == 0, "no write failed, or the failure was swallowed"
    assert not list(tmp_path.glob("*.open")), "a failed file was left open"
    closed = sorted(tmp_path.glob("*.warc.gz"))
    assert closed and all(p.stat().st_size <= LIMIT for p in closed)
    warcio_check(closed)
    uris = [r.rec_headers.get_header("WARC-Target-URI") for p in closed
            for r in ArchiveIterator(io.BytesIO(p.read_bytes()))]
    kept = [u for u in uris if u and u.startswith("urn:test:") and u != "urn:test:after"]
    assert kept == [f"urn:test:{i}" for i in range(len(kept))] and len(kept) >= 5
    assert ("urn:test:after" in uris) is (not threaded)
    assert list(tmp_path.glob("*.quarantined")), "the torn tail was not kept aside"


def test_a_crawl_whose_disk_fills_keeps_the_reason_for_its_report(tmp_path: Path) -> None:
    """The crawls' capture: the failed write is raised for that page, remembered as ``write_error`` (the run's
    report names it) and closing does not raise again, so the report is still written."""
    from crawlers.capture import WarcCapture

    result = tmp_path / "result.txt"

    def crawl() -> int:
        capture = WarcCapture(_writer(tmp_path, True, "crawl"))

        def write(record: ArcWarcRecord) -> None:
            capture.write(record)
            _written(capture.writer)

        failed = _fill(write, capture.builder)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        files = capture.close()   # must not raise
        result.write_text(f"{failed}\n{capture.write_error}\n{len(files)}", encoding="utf-8")
        return 0

    assert os.WEXITSTATUS(_in_child(crawl)) == 0
    failed, error, files = result.read_text(encoding="utf-8").splitlines()
    assert failed == "True" and "File too large" in error and int(files) >= 1


def test_a_quick_check_whose_warc_failed_only_at_close_is_not_complete(tmp_path: Path) -> None:
    """The threaded writer fails on its thread after the last page was handed over, so only closing raises.
    The run's report (filled as the spider fills it at close) names the failure, and the check is judged
    ``incomplete``, not ``complete``: some of what it read has no capture in the archive. Quick checks are
    otherwise judged on their listing pages alone, and its one listing page was read."""
    from crawlers.capture import WarcCapture
    from crawlers.report import CrawlReport
    from scheduler.pipeline import run_status

    saved = tmp_path / "run.json"

    def crawl() -> int:
        capture = WarcCapture(_writer(tmp_path, True, "quick"))
        report = CrawlReport("src", "run", kind="quick")
        report.pages_ok["listing"] = 1
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        capture.write(capture.builder.resource("urn:test:page", "application/octet-stream", os.urandom(2 * LIMIT)))
        files = capture.close()   # the failure comes here, not at the write
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        report.warc_closed(files, capture.writer.bytes_written, capture.write_error)
        report.save(saved)
        return 0

    assert os.WEXITSTATUS(_in_child(crawl)) == 0
    report = CrawlReport.load(saved)
    assert [p.message for p in report.problems if "WARC writing failed" in p.message and "File too large" in p.message]
    assert report.pages_failed["listing"] == 0 and not report.challenges   # what quick checks were judged on
    assert run_status(report) == "incomplete"
