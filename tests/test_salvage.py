"""archive.salvage: an ``.open`` WARC cut mid-record, mid-gzip-member, empty, or clean."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from archive_tools import warcio_check
from warc_factory import member_ends, write_spool_warcs

from archive.salvage import good_prefix, open_files, salvage
from archive.writer import OPEN_SUFFIX


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


@pytest.mark.parametrize("threaded", [False, True], ids=["writer", "threaded-writer"])
def test_records_written_before_a_kill_survive_it(tmp_path: Path, threaded: bool) -> None:
    """A process killed without clean-up (no close, no exit handlers, no buffer flush) after writing records:
    salvage keeps every one of them. Small records used to sit in Python's write buffer and die with it.
    The crawls' writer (threaded) is killed once its queue is empty: what it wrote survives as well."""
    import os
    import signal
    import time

    from archive.background import ThreadedWarcWriter
    from archive.records import RecordBuilder
    from archive.writer import RollingWarcWriter

    pid = os.fork()
    if pid == 0:   # the "crawl": write 5 small response/request groups, then die as kill -9 would
        builder = RecordBuilder()
        kind = ThreadedWarcWriter if threaded else RollingWarcWriter
        writer = kind(tmp_path, prefix="killed", warcinfo={})
        for i in range(5):
            response = builder.response(f"http://example.org/{i}", 200, [], b"<p>%d</p>" % i)
            request = builder.request(f"http://example.org/{i}", "GET", [], date=builder.now(),
                                      concurrent_to=str(response.rec_headers.get_header("WARC-Record-ID")))
            writer.submit(response, request)
        while writer.queued:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    [opened] = tmp_path.glob("*.open")
    result = salvage(opened)
    assert result.records == 1 + 5 * 2 and result.cut_bytes == 0   # warcinfo + every group written
    assert result.kept is not None
    warcio_check(result.kept)
