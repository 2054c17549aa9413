"""archive.records and archive.writer: exact bytes with a pinned clock and ids, rollover, crash-safe names."""

from __future__ import annotations

import gzip
import itertools
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders

from archive.records import RecordBuilder, _Sha256Writer, sha256_digest
from archive.writer import RollingWarcWriter
from tests.archive_tools import warcio_check

CLOCK = datetime(2026, 3, 5, 1, 2, 3, 456789, tzinfo=UTC)


def fixed_builder() -> RecordBuilder:
    counter = itertools.count(1)
    return RecordBuilder(clock=lambda: CLOCK,
                         make_id=lambda: f"<urn:uuid:00000000-0000-0000-0000-{next(counter):012d}>")


def test_response_record_bytes_are_exact_with_pinned_clock_and_ids() -> None:
    builder = fixed_builder()
    record = builder.response("http://example.org/a", 200, [("Content-Type", "text/html")], b"<p>hi</p>",
                              ip_address="127.0.0.1")
    data = builder.to_bytes(record)
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>hi</p>"
    assert data == (
        b"WARC/1.1\r\n"
        b"WARC-Date: 2026-03-05T01:02:03.456789Z\r\n"
        b"WARC-IP-Address: 127.0.0.1\r\n"
        b"WARC-Type: response\r\n"
        b"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>\r\n"
        b"WARC-Target-URI: http://example.org/a\r\n"
        + f"WARC-Payload-Digest: {sha256_digest(b'<p>hi</p>')}\r\n".encode()
        + f"WARC-Block-Digest: {sha256_digest(block)}\r\n".encode()
        + b"Content-Type: application/http; msgtype=response\r\n"
        + f"Content-Length: {len(block)}\r\n\r\n".encode()
        + block + b"\r\n\r\n"
    )


def test_writer_rolls_over_by_size_keeps_pairs_together_and_round_trips(tmp_path: Path) -> None:
    builder = fixed_builder()
    writer = RollingWarcWriter(tmp_path, prefix="t", warcinfo={"isPartOf": "t"}, builder=builder, max_size=3000)
    bodies = [bytes([65 + i % 26]) * 1500 + str(i).encode() for i in range(12)]
    for i, body in enumerate(bodies):
        response = builder.response(f"http://example.org/{i}", 200, [], body)
        request = builder.request(f"http://example.org/{i}", "GET", [("Host", "example.org")], date=builder.now(),
                                  concurrent_to=str(response.rec_headers.get_header("WARC-Record-ID")))
        writer.write(response, request)
    files = writer.close()
    assert len(files) > 2 and not list(tmp_path.glob("*.open"))
    warcio_check(files)
    seen = []
    for path in files:
        with path.open("rb") as fh:
            records = list((r.rec_type, r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
                           for r in ArchiveIterator(fh))
        assert records[0][0] == "warcinfo"
        pairs = records[1:]
        assert [t for t, _, _ in pairs] == ["response", "request"] * (len(pairs) // 2)
        seen += [body for t, _, body in pairs if t == "response"]
    assert seen == bodies


def test_offsets_allow_reading_one_record_with_one_ranged_read(tmp_path: Path) -> None:
    builder = fixed_builder()
    writer = RollingWarcWriter(tmp_path, prefix="t", warcinfo={}, builder=builder)
    written = writer.write(builder.resource("urn:x", "text/plain", b"payload-1"),
                           builder.resource("urn:y", "text/plain", b"payload-2"))
    path = writer.close()[0]
    entry = written[1]
    with path.open("rb") as fh:
        fh.seek(entry.offset)
        member = fh.read(entry.length)
    assert gzip.decompress(member).split(b"\r\n\r\n", 1)[1].startswith(b"payload-2")


def test_unfinished_file_keeps_open_suffix(tmp_path: Path) -> None:
    builder = fixed_builder()
    writer = RollingWarcWriter(tmp_path, prefix="t", warcinfo={}, builder=builder)
    writer.write(builder.resource("urn:x", "text/plain", b"x"))
    assert [p.name for p in tmp_path.iterdir()] == ["t-00001.warc.gz.open"]
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["t-00001.warc.gz"]


def warcio_bytes(record_type: str, uri: str, body: bytes, warc_headers: dict[str, str], *,
                 http: StatusAndHeaders | None = None, content_type: str = "") -> bytes:
    """The same record through warcio's own writer (generic path), same pinned clock and ids."""
    counter = itertools.count(1)
    writer = _Sha256Writer(lambda: CLOCK, lambda: f"<urn:uuid:00000000-0000-0000-0000-{next(counter):012d}>")
    record = writer.create_warc_record(uri, record_type, payload=BytesIO(body), length=len(body),
                                       http_headers=http, warc_content_type=content_type,
                                       warc_headers_dict=warc_headers)
    writer.out = out = BytesIO()
    writer.write_record(record)
    return out.getvalue()


@pytest.mark.parametrize("body", [b"", b"<p>h\xc3\xa9</p>", b"x" * 70_000])
def test_records_built_without_warcio_writer_match_its_bytes(body: bytes) -> None:
    date = "2026-03-05T01:02:03.456789Z"
    headers = [("Content-Type", "text/html"), ("X-Name", "café"), ("Set-Cookie", "a=b; c")]
    url = "http://example.org/a/b?q=%C3%A9&x=1"

    response = fixed_builder().response(url, 404, headers, body, ip_address="10.0.0.1", date=date)
    http = StatusAndHeaders("404 Not Found", list(headers), protocol="HTTP/1.1")
    expected = warcio_bytes("response", url, body,
                            {"WARC-Date": date, "WARC-IP-Address": "10.0.0.1"}, http=http)
    assert fixed_builder().to_bytes(response) == expected

    builder = fixed_builder()
    no_ip = builder.response(url, 200, headers, body, reason="Fine", date=date, payload_digest=sha256_digest(body))
    http = StatusAndHeaders("200 Fine", list(headers), protocol="HTTP/1.1")
    assert builder.to_bytes(no_ip) == warcio_bytes("response", url, body, {"WARC-Date": date}, http=http)

    request = fixed_builder().request(url, "POST", headers, body, date=date, concurrent_to="<urn:uuid:r>")
    http = StatusAndHeaders("POST /a/b?q=%C3%A9&x=1 HTTP/1.1", list(headers), protocol="HTTP/1.1",
                            is_http_request=True)
    assert fixed_builder().to_bytes(request) == warcio_bytes(
        "request", url, body, {"WARC-Date": date, "WARC-Concurrent-To": "<urn:uuid:r>"}, http=http)

    for refers_to, uri in ((None, "urn:items:http://example.org/é"), ("<urn:uuid:r>", "http://example.org/")):
        resource = fixed_builder().resource(uri, "text/plain", body, refers_to=refers_to, date=date)
        dict_ = {"WARC-Date": date, **({"WARC-Concurrent-To": refers_to} if refers_to else {})}   # not Refers-To
        assert fixed_builder().to_bytes(resource) == warcio_bytes("resource", uri, body, dict_,
                                                                  content_type="text/plain")
    metadata = fixed_builder().metadata("urn:items:x", {"é": [1]}, date=date)
    assert fixed_builder().to_bytes(metadata) == warcio_bytes(
        "metadata", "urn:items:x", '{"é": [1]}'.encode(), {"WARC-Date": date}, content_type="application/json")
    # The record objects still read like warcio's: digests, type and length in their headers.
    assert metadata.rec_headers.get_header("WARC-Payload-Digest") == sha256_digest('{"é": [1]}'.encode())
    assert response.rec_headers.get_header("WARC-Type") == "response"


def _records_by_file(files: list[Path]) -> list[list[tuple[str, list[tuple[str, str]], bytes]]]:
    out = []
    for path in files:
        with path.open("rb") as fh:
            out.append([(r.rec_type, r.rec_headers.headers, r.content_stream().read()) for r in ArchiveIterator(fh)
                        if r.rec_type != "warcinfo"])
    return out


@pytest.mark.parametrize("budget", [16 << 20, 1])
def test_threaded_writer_writes_what_the_synchronous_one_does_in_order(tmp_path: Path, budget: int,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Compression and writes on the writer's thread: same records, same order, same rollover, all on disk
    when close returns; with a byte budget smaller than any group, each waits for the one before."""
    from archive import background
    from archive.background import ThreadedWarcWriter

    monkeypatch.setattr(background, "QUEUE_BYTES", budget)

    def crawl(writer: RollingWarcWriter, builder: RecordBuilder) -> list[Path]:
        for i in range(40):
            body = (f"<p>{i}</p>" * (1 + i * 37)).encode()
            response = builder.response(f"http://example.org/{i}", 200, [("Content-Type", "text/html")], body)
            request = builder.request(f"http://example.org/{i}", "GET", [("Host", "example.org")],
                                      date=builder.now(), concurrent_to=str(response.rec_headers.get_header(
                                          "WARC-Record-ID")))
            writer.submit(response, request)
        return writer.close()

    # The writers' own builders (warcinfo records) are apart from the pages': ids stay the same on both sides
    # whenever the thread starts a file.
    plain = crawl(RollingWarcWriter(tmp_path / "a", prefix="t", warcinfo={}, builder=fixed_builder(),
                                    max_size=4000), fixed_builder())
    threaded = ThreadedWarcWriter(tmp_path / "b", prefix="t", warcinfo={}, builder=fixed_builder(), max_size=4000)
    files = crawl(threaded, fixed_builder())
    assert len(files) == len(plain) > 2 and not list((tmp_path / "b").glob("*.open"))
    warcio_check(files)
    assert _records_by_file(files) == _records_by_file(plain)
    assert threaded.bytes_written == sum(p.stat().st_size for p in files)


def test_threaded_writer_failure_reaches_the_caller(tmp_path: Path) -> None:
    """A write failing on the thread (here: the spool path is a file) is raised by the next submit and close,
    not lost with the thread."""
    from archive.background import ThreadedWarcWriter

    builder = fixed_builder()
    blocked = tmp_path / "spool"
    blocked.write_text("not a directory")
    writer = ThreadedWarcWriter(blocked, prefix="t", warcinfo={}, builder=builder)
    writer.submit(builder.resource("urn:x", "text/plain", b"x"))
    with pytest.raises(OSError, match="writing WARC records failed"):
        writer.close()
    with pytest.raises(OSError, match="writing WARC records failed"):
        writer.submit(builder.resource("urn:y", "text/plain", b"y"))


@pytest.mark.parametrize("profile", ["identical-payload-digest", "server-not-modified"])
@pytest.mark.parametrize("headers", [None, [("Content-Type", "text/html"), ("X-Name", "café")]])
def test_revisit_records_built_without_warcio_writer_match_its_bytes(
        profile: str, headers: list[tuple[str, str]] | None) -> None:
    date, url = "2026-03-05T01:02:03.456789Z", "http://example.org/a?q=%C3%A9"
    ip = "10.0.0.1" if headers is None else None
    built = fixed_builder().revisit(url, 304 if headers is None else 200, headers, payload_digest="sha256:ABC",
                                    refers_to_uri="http://example.org/b", refers_to_date="2026-01-01T00:00:00Z",
                                    refers_to="<urn:uuid:r>", profile=profile, ip_address=ip, date=date)
    counter = itertools.count(1)
    writer = _Sha256Writer(lambda: CLOCK, lambda: f"<urn:uuid:00000000-0000-0000-0000-{next(counter):012d}>")
    http = StatusAndHeaders("200 OK", list(headers), protocol="HTTP/1.1") if headers is not None else None
    record = writer.create_revisit_record(url, "sha256:ABC", "http://example.org/b", "2026-01-01T00:00:00Z",
                                          http_headers=http, warc_headers_dict={
                                              "WARC-Date": date, **({"WARC-IP-Address": ip} if ip else {}),
                                              "WARC-Refers-To": "<urn:uuid:r>"})
    record.rec_headers.replace_header("WARC-Profile", "http://netpreserve.org/warc/1.1/revisit/" + profile)
    writer.out = out = BytesIO()
    writer.write_record(record)
    assert fixed_builder().to_bytes(built) == out.getvalue()
