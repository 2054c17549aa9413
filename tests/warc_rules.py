"""WARC 1.1's rules on which named fields each record type must, may and shall not carry (ISO 28500:2017,
"Named fields").

``warcio check`` verifies digests only, and no validator in the package lists checks field use, so this reads
the WARC with warcio and applies the standard's sentences, each quoted where it is applied. It returns what is
wrong, one line per record and rule, so a test can show them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

# WARC-Date: w3c-iso8601 at any W3CDTF granularity down to seconds; a fraction of 1 to 9 digits; UTC.
WARC_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
PROFILES = {"http://netpreserve.org/warc/1.1/revisit/identical-payload-digest",
            "http://netpreserve.org/warc/1.1/revisit/server-not-modified"}
# (field, the record types that "shall not" carry it)
FORBIDDEN = (
    # "The WARC-Refers-To field shall not be used in 'warcinfo', 'response', 'resource', 'request', and
    # 'continuation' records."
    ("WARC-Refers-To", {"warcinfo", "response", "resource", "request", "continuation"}),
    # "The WARC Concurrent-to field shall not be used in 'warcinfo', 'conversion', and 'continuation'"
    ("WARC-Concurrent-To", {"warcinfo", "conversion", "continuation"}),
    # "shall not be used on 'warcinfo', 'conversion' or 'continuation' records"
    ("WARC-IP-Address", {"warcinfo", "conversion", "continuation"}),
    # "A 'warcinfo' record shall not have a WARC-Target-URI field."
    ("WARC-Target-URI", {"warcinfo"}),
    # "The WARC-Warcinfo-ID field may be used in any record type except 'warcinfo'."
    ("WARC-Warcinfo-ID", {"warcinfo"}),
)
# "All 'response', 'resource', 'request', 'revisit', 'conversion' and 'continuation' records shall have a
# WARC-Target-URI field."
NEEDS_TARGET = {"response", "resource", "request", "revisit", "conversion", "continuation"}


def record_problems(path: Path, offset: int, kind: str, fields: dict[str, str]) -> list[str]:
    where = f"{path.name} @{offset} {kind}"
    problems = [f"{where}: no {name}" for name in ("WARC-Record-ID", "WARC-Date", "WARC-Type", "Content-Length")
                if name not in fields]
    if not WARC_DATE.match(fields.get("WARC-Date", "")):
        problems.append(f"{where}: WARC-Date {fields.get('WARC-Date')!r} is not W3CDTF UTC")
    problems += [f"{where}: carries {name}, which the standard forbids there"
                 for name, kinds in FORBIDDEN if kind in kinds and name in fields]
    if kind in NEEDS_TARGET and "WARC-Target-URI" not in fields:
        problems.append(f"{where}: no WARC-Target-URI")
    # "The WARC-Filename field may be used in 'warcinfo' type records and shall not be used for other"
    if kind != "warcinfo" and "WARC-Filename" in fields:
        problems.append(f"{where}: carries WARC-Filename")
    # "The WARC-Profile field is mandatory on 'revisit' type records"
    if kind == "revisit" and fields.get("WARC-Profile") not in PROFILES:
        problems.append(f"{where}: WARC-Profile {fields.get('WARC-Profile')!r} is not a WARC 1.1 revisit profile")
    if kind in ("request", "response") and not re.match(rf"application/http; ?msgtype={kind}\b",
                                                        fields.get("Content-Type", "")):
        problems.append(f"{where}: Content-Type {fields.get('Content-Type')!r} is not application/http of a {kind}")
    return problems


def field_problems(paths: Iterable[Path]) -> list[str]:
    """Every rule broken in ``paths``, and a file that does not begin with its ``warcinfo`` (the standard
    recommends it; listwatch's design requires it)."""
    problems: list[str] = []
    for path in paths:
        with path.open("rb") as fh:
            records = ArchiveIterator(fh)
            for n, record in enumerate(records):
                fields = dict(record.rec_headers.headers)
                if record.rec_headers.protocol != "WARC/1.1":
                    problems.append(f"{path.name}: {record.rec_headers.protocol}, not WARC/1.1")
                if n == 0 and record.rec_type != "warcinfo":
                    problems.append(f"{path.name}: begins with {record.rec_type}, not warcinfo")
                problems += record_problems(path, records.get_record_offset(), record.rec_type, fields)
    return problems
