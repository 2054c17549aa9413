"""Any S3-compatible store through boto3 (imported only here).

Keys are bucket-relative and already carry the configured prefix (``storage_key`` builds them); ``prefix``
is kept here for listing and reindexing.

Never overwriting a key, in two layers:

1. ``head_object`` before the upload: an existing key raises ``KeyExistsError`` at once.
2. ``If-None-Match: *`` on ``PutObject`` and ``CompleteMultipartUpload`` (when ``conditional_writes``):
   a store that honours it (AWS S3, moto, Ceph, recent MinIO) answers 412, which becomes ``KeyExistsError``.

Stores that ignore the header (``rclone serve s3``, older clones) keep a race: two writers that both pass
the ``head_object`` check within the same moment can both write, and the later one wins. listwatch's key
names are unique per crawl run (``<source>-<run id>-<serial>``), so only a duplicated sync of the *same*
file can race, and it writes the same bytes; the verification step after the upload catches anything else.

Multipart checksums kept by S3 are composite over parts, so our own whole-file SHA-256 travels as user
metadata (``x-amz-meta-sha256``). Note that rclone keeps user metadata in memory only: after a restart
``stat`` returns no ``sha256`` and checksum verification falls back to reading the object back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from s3transfer.manager import TransferManager

from archive.storage.base import CHUNK, KeyExistsError, ObjectInfo, StorageError, StorageUnavailable, check_key

if TYPE_CHECKING:
    from scheduler.settings import StorageSettings

_UNAVAILABLE_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
_UNAVAILABLE_CODES = {"ServiceUnavailable", "SlowDown", "InternalError", "RequestTimeout", "503", "500", "502", "504"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AllAccessDisabled"}
_EXISTS_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


def _public_endpoint(url: str | None) -> str:
    """The endpoint without any user:password@ part."""
    if not url:
        return "AWS S3"
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class S3Storage:
    """A bucket (and key prefix) on an S3-compatible endpoint."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        prefix: str = "",
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str = "path",
        checksums: str = "when_required",
        conditional_writes: bool = True,
        multipart_threshold: int = 64 * 1024 * 1024,
        multipart_chunksize: int = 8 * 1024 * 1024,
        object_lock_days: int | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if not bucket:
            raise StorageError("S3 storage needs a bucket (storage.bucket)")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix.strip("/")
        self.conditional_writes = conditional_writes
        self.object_lock_days = object_lock_days
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=max(5 * 1024 * 1024, multipart_chunksize),   # boto3's default part size
            use_threads=True,
        )
        self._secrets = [s for s in (access_key_id, secret_access_key) if s]
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=20,
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region)
        self.client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)
        if conditional_writes:
            for operation in ("PutObject", "CompleteMultipartUpload"):
                self.client.meta.events.register(f"before-parameter-build.s3.{operation}", self._if_none_match)

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> S3Storage:
        secret = settings.secret_access_key.get_secret_value() if settings.secret_access_key else None
        return cls(
            settings.bucket, endpoint_url=settings.endpoint_url, prefix=settings.prefix, region=settings.region,
            access_key_id=settings.access_key_id, secret_access_key=secret,
            addressing_style=settings.addressing_style, checksums=settings.checksums,
            conditional_writes=settings.conditional_writes, multipart_threshold=settings.multipart_threshold,
            object_lock_days=settings.object_lock_days,
        )

    @staticmethod
    def _if_none_match(params: dict[str, Any], **_: Any) -> None:
        params.setdefault("IfNoneMatch", "*")

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {_public_endpoint(self.endpoint_url)}"

    # -- errors ----------------------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _fail(self, exc: Exception, doing: str, key: str | None = None) -> NoReturn:
        """Translate a boto error into our error tree, in words an operator understands."""
        what = f"{doing} {key}" if key else doing
        where = self.describe()
        if isinstance(exc, _UNAVAILABLE_ERRORS):
            raise StorageUnavailable(f"cannot reach the S3 store {where}: {what} failed "
                                     f"({type(exc).__name__}); files stay in the spool") from None
        if isinstance(exc, NoCredentialsError):
            raise StorageError(f"no S3 credentials for {where}: set storage.access_key_id/secret_access_key "
                               "or the standard AWS environment/config") from None
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = self._scrub(str(error.get("Message", "") or ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _EXISTS_CODES or status == 412:
                raise KeyExistsError(f"{key} already exists in {where} (the store refused to overwrite it)") from None
            if code == "NoSuchBucket":
                raise StorageError(f"bucket {self.bucket!r} does not exist at {_public_endpoint(self.endpoint_url)}"
                                   f" ({what})") from None
            if code in _DENIED_CODES:
                raise StorageError(f"access denied by {where} ({what}: {code}): check the credentials "
                                   "and the bucket policy") from None
            if code in _UNAVAILABLE_CODES or (isinstance(status, int) and status >= 500):
                raise StorageUnavailable(f"the S3 store {where} is failing: {what} got {code or status} "
                                         f"{message}".rstrip()) from None
            if code in _MISSING_CODES:
                raise StorageError(f"{key} is missing from {where}") from None
            raise StorageError(f"{what} failed at {where}: {code} {message}".rstrip()) from None
        if isinstance(exc, BotoCoreError):
            raise StorageUnavailable(f"cannot talk to the S3 store {where}: {what} failed: "
                                     f"{self._scrub(str(exc))}") from None
        raise StorageError(f"{what} failed at {where}: {self._scrub(str(exc))}") from None

    # -- the Storage protocol --------------------------------------------------------------------------------

    def put_file(self, key: str, path: Path, *, sha256: str) -> ObjectInfo:
        check_key(key)
        if self.stat(key) is not None:
            raise KeyExistsError(f"{key} already exists in {self.describe()}")
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}}
        if self.object_lock_days:
            extra["ObjectLockMode"] = "COMPLIANCE"
            extra["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=self.object_lock_days)
            extra["ChecksumAlgorithm"] = "SHA256"   # S3 requires an integrity header with a retention period
        size = path.stat().st_size
        try:
            with TransferManager(self.client, self.transfer_config) as manager:
                manager.upload(str(path), self.bucket, key, extra_args=extra).result()
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "uploading", key)
        return ObjectInfo(key, size, sha256)

    def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                return None
            self._fail(exc, "checking", key)
        except BotoCoreError as exc:
            self._fail(exc, "checking", key)
        metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        return ObjectInfo(key, int(head["ContentLength"]), metadata.get("sha256") or None)

    def retention(self, key: str) -> tuple[str, datetime] | None:
        """(mode, retain-until) of an object under Object Lock, or None (read from ``HeadObject``)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "checking the retention of", key)
        if not head.get("ObjectLockMode"):
            return None
        return str(head["ObjectLockMode"]), head["ObjectLockRetainUntilDate"]

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        check_key(key)
        if length <= 0:
            return b""
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")
            data: bytes = got["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) == "InvalidRange":
                raise StorageError(f"{key} is shorter than expected: nothing at offset {offset}") from None
            self._fail(exc, "reading", key)
        except BotoCoreError as exc:
            self._fail(exc, "reading", key)
        if len(data) != length:
            raise StorageError(f"{key} is shorter than expected: wanted {length} bytes at {offset}, got {len(data)}")
        return data

    def iter_bytes(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        check_key(key)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "reading", key)
        try:
            yield from body.iter_chunks(chunk)
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "reading", key)
        finally:
            with contextlib.suppress(Exception):
                body.close()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(str(item["Key"]), int(item["Size"]))
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "listing", prefix or "/")

    def delete(self, key: str) -> None:
        """Remove an object (tests and operators only: the archive never deletes)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=check_key(key))
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "deleting", key)
