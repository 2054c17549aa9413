"""A WACZ export's ZIP can be read the way ReplayWeb.page (wabac.js) reads it: from the central directory alone.

wabac.js finds a member's bytes at its local header offset + 30 + name length + the *central directory's*
extra-field length. Forced Zip64 fields in the local headers (and not in the central directory, where zipfile
drops them under 4 GiB) shifted every WARC by 20 bytes for it, and no page of an export replayed in
ReplayWeb.page 2.5.3 (checked by hand: npm's replaywebpage served on loopback, in Chromium), although
``wacz validate`` and Python's zipfile, which read the local header, were content.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from archive.catalog import open_catalog
from archive.spool import sync
from archive.storage import LocalStorage
from archive.wacz import export_wacz
from tests.archive_tools import wacz_validate
from tests.warc_factory import write_spool_warcs

LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")


def test_every_member_starts_where_the_central_directory_says(tmp_path: Path) -> None:
    write_spool_warcs(tmp_path / "spool", pages=4)
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    storage = LocalStorage(tmp_path / "store")
    try:
        assert sync(catalog, storage, tmp_path / "spool").ok
        out = export_wacz(catalog, storage, tmp_path / "x.wacz", source_id="demo-static")
    finally:
        catalog.dispose()
    wacz_validate(out)
    raw = out.read_bytes()
    with zipfile.ZipFile(out) as zf:
        members = zf.infolist()
        assert any(m.filename.startswith("archive/") for m in members)
        for member in members:
            fields = LOCAL_HEADER.unpack_from(raw, member.header_offset)
            name_length, local_extra = fields[9], fields[10]
            assert local_extra == len(member.extra), f"{member.filename}: local extra {local_extra} bytes, " \
                                                     f"central directory {len(member.extra)}"
            start = member.header_offset + LOCAL_HEADER.size + name_length + len(member.extra)
            if member.filename.startswith("archive/"):   # stored: the bytes there are the WARC's, gzip first
                assert raw[start:start + member.compress_size] == zf.read(member), member.filename
                assert raw[start:start + 2] == b"\x1f\x8b", member.filename
