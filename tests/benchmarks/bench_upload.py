"""Upload benchmark: ``S3Storage.put_file`` against a plain boto3 ``upload_file`` of the same file.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.bench_upload --size-mb 200 --rounds 5

Servers run on loopback (``rclone serve s3`` on disk, ``moto_server`` in memory), started here. Rounds
alternate plain, ours, plain, ours, … and medians are compared. "ours" is the full put: ``head_object``
pre-check, ``If-None-Match: *``, SHA-256 metadata, multipart above ``multipart_threshold`` (the settings'
default). Verification (read-back: stream the object and re-hash it) is extra work our path does and a plain
upload does not, so it is timed separately and reported as a second ratio. Target: upload-only ratio ≥ 0.8
(ours takes at most 1.25× the plain time).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from archive.spool import check_object
from scheduler.settings import StorageSettings
from tests.servers import S3Server, moto_server, rclone_server


def _make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as fh:
        for i in range(size >> 20):
            chunk = block[i % 256:] + block[:i % 256]   # distinct blocks, cheap to make
            fh.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def bench(server: S3Server, path: Path, sha256: str, rounds: int) -> dict[str, list[float]]:
    bucket = server.make_bucket()
    client = server.client()
    storage = server.storage(bucket, multipart_threshold=StorageSettings().multipart_threshold)
    plain_config = TransferConfig()
    times: dict[str, list[float]] = {"plain": [], "ours": [], "verify": []}
    size = path.stat().st_size
    for i in range(rounds):
        start = time.perf_counter()
        client.upload_file(str(path), bucket, f"plain/{i}", Config=plain_config)
        times["plain"].append(time.perf_counter() - start)
        client.delete_object(Bucket=bucket, Key=f"plain/{i}")

        key = f"ours/{i}.warc.gz"
        start = time.perf_counter()
        storage.put_file(key, path, sha256=sha256)
        times["ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        problem = check_object(storage, key, size, sha256, "read-back")
        times["verify"].append(time.perf_counter() - start)
        if problem:
            raise SystemExit(f"verification failed on {server.kind}: {problem}")
        client.delete_object(Bucket=bucket, Key=key)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", default="rclone,moto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="listwatch-bench-upload-") as tmp:
        path = Path(tmp) / "bench.warc.gz"
        sha256 = _make_file(path, args.size_mb << 20)
        print(f"file: {args.size_mb} MB, {args.rounds} interleaved rounds per server, medians\n")
        header = f"{'server':8} {'plain s':>8} {'ours s':>8} {'verify s':>9} {'upload ratio':>13} {'+verify ratio':>14}"
        print(header)
        print("-" * len(header))
        for kind in args.servers.split(","):
            starter = rclone_server(Path(tmp) / "rclone") if kind == "rclone" else moto_server()
            with starter as server:
                bench(server, path, sha256, 1)            # warm-up: connections, imports, first bucket
                times = bench(server, path, sha256, args.rounds)
            plain, ours, verify = (statistics.median(times[k]) for k in ("plain", "ours", "verify"))
            print(f"{kind:8} {plain:8.2f} {ours:8.2f} {verify:9.2f} {plain / ours:12.2f}× "
                  f"{plain / (ours + verify):13.2f}×")
        print("\nratio = plain time / our time (≥ 0.8 is the target for upload only; verify reads the object back)")


if __name__ == "__main__":
    main()
