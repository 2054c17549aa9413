"""Crawl-like WARC files in a spool directory, for storage and sync tests (no crawl needed)."""

from __future__ import annotations

import os
import random
import shutil
import zlib
from pathlib import Path

from archive.records import RecordBuilder
from archive.writer import RollingWarcWriter


def write_spool_warcs(spool_dir: Path, source_id: str = "demo-static", *, run: str = "20260105T010203Z-a1b2c3",
                      pages: int = 12, max_size: int = 20_000, seed: int = 1) -> list[Path]:
    """Response + request pairs, a revisit, a screenshot-like resource and an items metadata record per page,
    rolled over into several closed ``spool/<source>/<source>-<run>-NNNNN.warc.gz`` files."""
    rng = random.Random(seed)
    builder = RecordBuilder()
    writer = RollingWarcWriter(spool_dir / source_id, prefix=f"{source_id}-{run}", builder=builder,
                               warcinfo={"isPartOf": source_id}, max_size=max_size)
    first_digest = ""
    for i in range(pages):
        url = f"http://127.0.0.1:8000/list/{i}.html"
        body = (f"<html><body><h1>Programme {i}</h1>".encode()
                + bytes(rng.getrandbits(8) for _ in range(rng.randint(500, 6000))) + b"</body></html>")
        response = builder.response(url, 200, [("Content-Type", "text/html; charset=utf-8")], body,
                                    ip_address="127.0.0.1")
        rid = str(response.rec_headers.get_header("WARC-Record-ID"))
        request = builder.request(url, "GET", [("Host", "127.0.0.1:8000")], date=builder.now(), concurrent_to=rid)
        records = [response, request]
        if i == 0:
            first_digest = str(response.rec_headers.get_header("WARC-Payload-Digest"))
        else:
            records.append(builder.revisit(f"{url}?again", 200, [("Content-Type", "text/html")],
                                           payload_digest=first_digest, refers_to_uri=url.replace(str(i), "0"),
                                           refers_to_date=builder.now()))
        records.append(builder.resource(f"urn:screenshot:{url}", "image/png", os.urandom(800), refers_to=rid))
        records.append(builder.metadata(f"urn:items:{url}", {"items": [{"title": f"Programme {i}"}]},
                                        refers_to=rid))
        writer.write(*records)
    return writer.close()


def keep_copies(paths: list[Path], target: Path) -> dict[str, Path]:
    """Copies of spool files (sync deletes them), by file name."""
    target.mkdir(parents=True, exist_ok=True)
    return {p.name: Path(shutil.copy2(p, target / p.name)) for p in paths}


def member_ends(data: bytes) -> list[int]:
    """The end offset of each gzip member of a ``.warc.gz`` (one record or record group each), found with zlib
    alone: independent of the salvage code these offsets test."""
    ends, at = [], 0
    while at < len(data):
        decomp = zlib.decompressobj(zlib.MAX_WBITS + 16)
        decomp.decompress(data[at:])
        at = len(data) - len(decomp.unused_data)
        ends.append(at)
    return ends
