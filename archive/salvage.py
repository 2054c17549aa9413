"""Salvage a WARC left open by a crawl that died: keep every complete record, quarantine the rest.

The writer (:mod:`archive.writer`) writes one gzip member per record to ``NAME.warc.gz.open`` and renames the
file when it is closed. A crawl killed mid-write leaves the ``.open`` file with a complete prefix and possibly a
torn last member. :func:`salvage` walks the file member by member (streaming, never the whole file in memory),
keeps the byte offset after the last member that decompresses completely *and* holds a WARC record whose
``WARC-Block-Digest`` verifies, and then:

==========================  ==================================================================================
what the file holds         result
==========================  ==================================================================================
only complete records       renamed to ``NAME.warc.gz`` (nothing cut)
a good prefix, then junk    the prefix written to ``NAME.warc.gz`` (fsynced, then renamed into place); the
                            original kept as ``NAME.warc.gz.open.quarantined``
no record past warcinfo     the whole file renamed to ``NAME.warc.gz.open.quarantined``; no closed file
==========================  ==================================================================================

Nothing is ever written under the final name before it is complete. The closed file is then picked up by the
normal spool sync (registered, uploaded, verified).

>>> salvage(Path("spool/demo/demo-20260101T000000Z-abc123-00001.warc.gz.open"))  # doctest: +SKIP
Salvaged(kept=Path(...), quarantined=None, records=12, cut_bytes=0)
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from warcio.recordloader import ArcWarcRecordLoader

from archive.writer import OPEN_SUFFIX

QUARANTINE_SUFFIX = ".quarantined"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Salvaged:
    """What :func:`salvage` did with one ``.open`` file."""

    original: Path
    kept: Path | None               # the closed WARC, if any record was usable
    quarantined: Path | None        # the original bytes, if anything was cut (or nothing was usable)
    records: int                    # complete, verified records kept (warcinfo included)
    cut_bytes: int                  # bytes after the good prefix

    @property
    def clean(self) -> bool:
        return self.kept is not None and self.quarantined is None


def _members(path: Path) -> Iterator[tuple[int, tempfile.SpooledTemporaryFile[bytes]]]:
    """Yield (end offset, decompressed bytes) of each complete gzip member; stop at the first torn one."""
    with path.open("rb") as handle:
        consumed = 0          # compressed bytes fed to finished members
        pending = b""
        out: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(max_size=CHUNK)  # noqa: SIM115 (closed by the caller)
        decomp = zlib.decompressobj(zlib.MAX_WBITS + 16)
        fed = 0               # compressed bytes fed to the current member
        try:
            while True:
                data = pending or handle.read(CHUNK)
                pending = b""
                if not data:
                    return        # end of file: a member in progress is torn
                try:
                    out.write(decomp.decompress(data))
                except zlib.error:
                    return
                if not decomp.eof:
                    fed += len(data)
                    continue
                rest = decomp.unused_data
                fed += len(data) - len(rest)
                consumed += fed
                out.seek(0)
                yield consumed, out
                out = tempfile.SpooledTemporaryFile(max_size=CHUNK)  # noqa: SIM115 (closed by the caller)
                decomp, fed, pending = zlib.decompressobj(zlib.MAX_WBITS + 16), 0, rest
        finally:
            out.close()   # the member never handed out (torn, or not begun); closing a handed-out one is harmless


def _digest_matches(expected: str, data_digest: bytes) -> bool:
    algo, _, value = expected.partition(":")
    if algo.lower() != "sha256":
        return True   # only SHA-256 is written here; other digests are not ours to judge
    try:
        wanted = base64.b32decode(value.upper()) if len(value) != 64 else bytes.fromhex(value)
    except ValueError:
        return False
    return wanted == data_digest


def record_ok(stream: io.IOBase) -> bool:
    """True when ``stream`` holds exactly one WARC record whose block is whole and whose digest verifies."""
    try:
        record = ArcWarcRecordLoader().parse_record_stream(stream, known_format="warc", no_record_parse=True)
        length = int(record.rec_headers.get_header("Content-Length") or "")
        digester = hashlib.sha256()
        total = 0
        while chunk := record.raw_stream.read(CHUNK):
            digester.update(chunk)
            total += len(chunk)
    except Exception:  # a damaged header or length (warcio raises several types): all mean "not usable"
        return False
    if total != length or stream.read(8) != b"\r\n\r\n":   # the member holds this record and its end mark only
        return False
    expected = record.rec_headers.get_header("WARC-Block-Digest")
    return expected is None or _digest_matches(expected, digester.digest())


def good_prefix(path: Path) -> tuple[int, int]:
    """(bytes of the longest prefix made of complete, verified records; how many records it holds)."""
    end, records = 0, 0
    for member_end, data in _members(path):
        with data:
            if not record_ok(data):  # type: ignore[arg-type]
                break
        end, records = member_end, records + 1
    return end, records


def _copy_prefix(source: Path, target: Path, length: int) -> None:
    tmp = target.with_name(f".{target.name}.salvage")
    with source.open("rb") as src, tmp.open("wb") as dst:
        left = length
        while left:
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{source} shrank while being salvaged")
            dst.write(chunk)
            left -= len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    tmp.rename(target)


def salvage(path: Path) -> Salvaged:
    """Close ``NAME.warc.gz.open`` as ``NAME.warc.gz`` with its complete records; quarantine what is cut."""
    if not path.name.endswith(OPEN_SUFFIX):
        raise ValueError(f"{path} is not an open WARC (*{OPEN_SUFFIX})")
    final = path.with_name(path.name.removesuffix(OPEN_SUFFIX))
    quarantine = path.with_name(path.name + QUARANTINE_SUFFIX)
    size = path.stat().st_size
    end, records = good_prefix(path)
    if records < 2:   # nothing past warcinfo: no evidence worth a closed file
        path.rename(quarantine)
        return Salvaged(path, None, quarantine, 0, size)
    if end == size:
        path.rename(final)
        return Salvaged(path, final, None, records, 0)
    _copy_prefix(path, final, end)
    path.rename(quarantine)
    return Salvaged(path, final, quarantine, records, size - end)


def open_files(spool_dir: Path, prefix: str = "") -> list[Path]:
    """``*.warc.gz.open`` files under ``spool_dir`` whose name starts with ``prefix``."""
    if not spool_dir.is_dir():
        return []
    return sorted(p for p in spool_dir.rglob(f"*{OPEN_SUFFIX}") if p.name.startswith(prefix) and p.is_file())
