"""Every kind of record listwatch writes follows WARC 1.1's rules on named fields (tests/warc_rules.py).

Built by the crawl's own RecordBuilder and writer (tests/warc_factory.py writes what a crawl writes: responses,
requests, revisits, a rendered page's resource records and items metadata). Real crawls' WARCs, a browser
capture included, are checked in tests/test_retrieval.py.
"""

from __future__ import annotations

from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from tests.archive_tools import warcio_check
from tests.warc_factory import write_spool_warcs
from tests.warc_rules import field_problems


def test_every_record_kind_follows_the_field_rules(tmp_path: Path) -> None:
    warcs = write_spool_warcs(tmp_path / "spool", pages=4)
    warcio_check(warcs)
    assert field_problems(warcs) == []


def test_a_resource_made_from_a_page_names_it_as_concurrent_not_refers_to(tmp_path: Path) -> None:
    """'WARC-Refers-To ... shall not be used in ... resource ... records': a screenshot names its page's
    response with WARC-Concurrent-To (allowed on 'resource'); items metadata keeps WARC-Refers-To."""
    warcs = write_spool_warcs(tmp_path / "spool", pages=2)
    responses, links = set(), {}
    for path in warcs:
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                headers = record.rec_headers
                if record.rec_type == "response":
                    responses.add(headers.get_header("WARC-Record-ID"))
                elif record.rec_type in ("resource", "metadata"):
                    links[headers.get_header("WARC-Target-URI")] = (headers.get_header("WARC-Concurrent-To"),
                                                                    headers.get_header("WARC-Refers-To"))
    shots = {uri: link for uri, link in links.items() if uri.startswith("urn:screenshot:")}
    items = {uri: link for uri, link in links.items() if uri.startswith("urn:items:")}
    assert shots and all(concurrent in responses and refers is None for concurrent, refers in shots.values())
    assert items and all(refers in responses and concurrent is None for concurrent, refers in items.values())
