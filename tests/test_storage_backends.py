"""The Storage protocol on every backend: local directory, rclone serve s3 and moto_server (real servers)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from archive.storage import InvalidKeyError, KeyExistsError, StorageError, StorageUnavailable, digest_object
from archive.storage.s3 import S3Storage
from tests import servers
from tests.servers import S3Server, StoreUnderTest, make_store

# pytest fixtures from tests/servers.py
any_store = servers.any_store
moto_s3 = servers.moto_s3
rclone_s3 = servers.rclone_s3

MB = 1024 * 1024


def _file(path: Path, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_round_trip_and_never_overwrite(any_store: StoreUnderTest, tmp_path: Path) -> None:
    storage = any_store.storage
    path, sha = _file(tmp_path / "a.warc.gz", 300_000)
    data = path.read_bytes()
    info = storage.put_file("src/2026/01/a.warc.gz", path, sha256=sha)
    assert (info.key, info.size) == ("src/2026/01/a.warc.gz", len(data))
    stat = storage.stat("src/2026/01/a.warc.gz")
    assert stat is not None and stat.size == len(data)
    assert storage.stat("src/2026/01/nope.warc.gz") is None
    assert storage.read_range("src/2026/01/a.warc.gz", 12_345, 1000) == data[12_345:13_345]
    assert storage.read_range("src/2026/01/a.warc.gz", 0, len(data)) == data
    assert b"".join(storage.iter_bytes("src/2026/01/a.warc.gz", 65536)) == data
    assert digest_object(storage, "src/2026/01/a.warc.gz") == (len(data), sha)
    other, other_sha = _file(tmp_path / "b.cdxj", 10)
    storage.put_file("src/2026/01/b.cdxj", other, sha256=other_sha)
    storage.put_file("elsewhere/c", other, sha256=other_sha)
    assert [o.key for o in storage.list("src/")] == ["src/2026/01/a.warc.gz", "src/2026/01/b.cdxj"]
    assert [o.key for o in storage.list("src/2026/01/a")] == ["src/2026/01/a.warc.gz"]
    assert {o.key for o in storage.list()} == {"src/2026/01/a.warc.gz", "src/2026/01/b.cdxj", "elsewhere/c"}

    with pytest.raises(KeyExistsError):
        storage.put_file("src/2026/01/a.warc.gz", other, sha256=other_sha)
    assert b"".join(storage.iter_bytes("src/2026/01/a.warc.gz")) == data      # untouched
    with pytest.raises(StorageError, match="shorter"):
        storage.read_range("src/2026/01/a.warc.gz", len(data) - 10, 100)
    with pytest.raises(StorageError, match=r"missing|not"):
        b"".join(storage.iter_bytes("src/2026/01/nope.warc.gz"))


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/../../b", "a/./b", "", "a\\b", "a b"])
def test_unsafe_keys_are_rejected(any_store: StoreUnderTest, tmp_path: Path, key: str) -> None:
    path, sha = _file(tmp_path / "x", 10)
    with pytest.raises(InvalidKeyError):
        any_store.storage.put_file(key, path, sha256=sha)
    with pytest.raises(InvalidKeyError):
        any_store.storage.read_range(key, 0, 1)
    with pytest.raises(InvalidKeyError):
        any_store.storage.stat(key)


def test_moto_refuses_overwrite_with_a_real_412(moto_s3: S3Server, tmp_path: Path) -> None:
    """The head_object pre-check is bypassed: the conditional PUT itself must fail, single and multipart."""
    storage = moto_s3.storage(moto_s3.make_bucket(), multipart_threshold=5 * MB)
    small, small_sha = _file(tmp_path / "small", 1000)
    large, large_sha = _file(tmp_path / "large", 6 * MB)
    storage.put_file("k/small", small, sha256=small_sha)
    storage.put_file("k/large", large, sha256=large_sha)
    storage.stat = lambda key: None  # type: ignore[method-assign]  # as if a second writer raced us
    with pytest.raises(KeyExistsError, match="refused to overwrite"):
        storage.put_file("k/small", large, sha256=large_sha)
    with pytest.raises(KeyExistsError, match="refused to overwrite"):
        storage.put_file("k/large", small, sha256=small_sha)
    assert digest_object(storage, "k/small") == (1000, small_sha)
    assert digest_object(storage, "k/large") == (6 * MB, large_sha)


@pytest.mark.parametrize("kind", ["rclone", "moto"])
def test_multipart_upload_keeps_our_sha256(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = make_store(kind, request, tmp_path, multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    path, sha = _file(tmp_path / "big.warc.gz", 6 * MB)
    store.storage.put_file("src/2026/01/big.warc.gz", path, sha256=sha)
    head = store.server.client().head_object(Bucket=store.bucket, Key="src/2026/01/big.warc.gz")  # type: ignore[union-attr]
    if kind == "moto":
        assert head["ETag"].strip('"').endswith("-2")   # really multipart (composite ETag over 2 parts)
    info = store.storage.stat("src/2026/01/big.warc.gz")
    assert info is not None and info.size == 6 * MB and info.sha256 == sha
    assert digest_object(store.storage, "src/2026/01/big.warc.gz") == (6 * MB, sha)


def test_object_lock_retention_on_moto(moto_s3: S3Server, tmp_path: Path) -> None:
    bucket = moto_s3.make_bucket(object_lock=True)
    storage = moto_s3.storage(bucket, object_lock_days=30)
    path, sha = _file(tmp_path / "locked.warc.gz", 2000)
    storage.put_file("src/locked.warc.gz", path, sha256=sha)
    retention = storage.retention("src/locked.warc.gz")
    assert retention is not None
    mode, until = retention
    assert mode == "COMPLIANCE"
    assert timedelta(days=29) < until - datetime.now(UTC) <= timedelta(days=30)
    client = moto_s3.client()
    version = client.head_object(Bucket=bucket, Key="src/locked.warc.gz")["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):      # compliance mode: the version cannot be deleted
        client.delete_object(Bucket=bucket, Key="src/locked.warc.gz", VersionId=version)


def test_errors_are_clear_and_carry_no_secrets(rclone_s3: S3Server, tmp_path: Path) -> None:
    path, sha = _file(tmp_path / "x", 10)
    wrong = S3Storage("nobucket", endpoint_url=rclone_s3.endpoint, access_key_id="AKIDWRONG",
                      secret_access_key="very-secret-value")
    with pytest.raises(StorageError) as denied:
        wrong.put_file("a/x", path, sha256=sha)
    assert "access denied" in str(denied.value) and "secret" not in str(denied.value)
    assert "AKIDWRONG" not in str(denied.value)
    missing = rclone_s3.storage("no-such-bucket")
    with pytest.raises(StorageError, match=r"does not exist|no-such-bucket"):
        missing.put_file("a/x", path, sha256=sha)
    bucket = rclone_s3.make_bucket()
    storage = rclone_s3.storage(bucket)
    rclone_s3.stop()
    with pytest.raises(StorageUnavailable) as down:
        storage.put_file("a/x", path, sha256=sha)
    message = str(down.value)
    assert rclone_s3.endpoint in message and bucket in message
    assert rclone_s3.secret_key not in message and rclone_s3.access_key not in message
