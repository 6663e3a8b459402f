"""Blob stores: audio segments, transcripts and plugin files, by key, on disk or in S3.

``blobs_from_url`` picks the backend: ``file:///var/lib/couchpotato/blobs`` (a directory) or
``s3://bucket/prefix`` (boto3; the endpoint of an S3-compatible server comes from boto3's own
``AWS_ENDPOINT_URL``, or ``?endpoint=http://host:port&region=eu-west-1``). Keys are relative,
``/``-separated paths (``audio/<session>/<seq>.s16``). Both backends run their blocking I/O in
threads, never on the event loop, and write atomically (a reader sees the old blob or the new one,
never half of one).

The S3 store checks its bucket when it is opened (a missing bucket, refused credentials or an
unreachable endpoint is one ``ConfigError`` line at start-up, not a failure at the first
segment), retries throttling and transient errors with exponential backoff (botocore's
``standard`` retry mode) and uploads objects of ``multipart_threshold_bytes`` or more in parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import BlobError, BlobNotFound, ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_MAX_ATTEMPTS = 5  # tries in all; botocore's standard mode backs off exponentially, with jitter
S3_CONNECT_TIMEOUT_S = 5.0
S3_READ_TIMEOUT_S = 30.0
S3_MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024
S3_MULTIPART_CHUNK_BYTES = 8 * 1024 * 1024  # S3 refuses parts under 5 MiB (but the last)


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: its key, size in bytes and last modification (Unix seconds)."""

    key: str
    size: int
    modified_at: float


@runtime_checkable
class BlobStore(Protocol):
    """Bytes by key."""

    url: str

    async def put(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` (replacing it); returns the key."""
        ...

    async def get(self, key: str) -> bytes:
        """The blob's bytes; raises BlobNotFound."""
        ...

    async def delete(self, key: str) -> bool:
        """True if something was deleted."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str = "") -> list[BlobInfo]:
        """Blobs whose key starts with ``prefix``, sorted by key."""
        ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def check_key(key: str) -> str:
    """A relative key without ``..``, empty or absolute parts; raises ConfigError."""
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or any(p in ("..", ".", "") for p in parts) or "\\" in key:
        raise ConfigError(f"bad blob key {key!r}: use a relative path like audio/session/0001.s16")
    return key


class _Base:
    url: str

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        return None


class FileBlobStore(_Base):
    """Blobs as files under a directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as e:
            raise BlobError(f"cannot write blob {key} under {self.root}: {e.strerror or e}") from e
        return key

    def _get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {key} in {self.url}") from None
        except OSError as e:
            raise BlobError(f"cannot read blob {key}: {e.strerror or e}") from e

    def _delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
            return True
        except FileNotFoundError:
            return False
        except OSError as e:
            raise BlobError(f"cannot delete blob {key}: {e.strerror or e}") from e

    def _list(self, prefix: str) -> list[BlobInfo]:
        out: list[BlobInfo] = []
        if not self.root.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                p = Path(dirpath) / name
                key = p.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        st = p.stat()
                        out.append(BlobInfo(key, st.st_size, st.st_mtime))
        return sorted(out, key=lambda b: b.key)

    async def put(self, key: str, data: bytes) -> str:
        return await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def list(self, prefix: str = "") -> list[BlobInfo]:
        return await asyncio.to_thread(self._list, prefix)


class S3BlobStore(_Base):
    """Blobs as objects in an S3 bucket (or an S3-compatible server), under a key prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: S3Client | None = None,
        max_attempts: int = S3_MAX_ATTEMPTS,
        multipart_threshold_bytes: int = S3_MULTIPART_THRESHOLD_BYTES,
        multipart_chunk_bytes: int = S3_MULTIPART_CHUNK_BYTES,
    ) -> None:
        if not bucket:
            raise ConfigError("an s3:// blob URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"total_max_attempts": max_attempts, "mode": "standard"},
                connect_timeout=S3_CONNECT_TIMEOUT_S,
                read_timeout=S3_READ_TIMEOUT_S,
            )
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        self._s3 = client
        self.multipart_threshold_bytes = multipart_threshold_bytes
        self.multipart_chunk_bytes = multipart_chunk_bytes

    async def __aenter__(self) -> Self:
        await self.check()
        return self

    def _where(self) -> str:
        return f"s3://{self.bucket} at {self._s3.meta.endpoint_url}"

    def _check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise ConfigError(
                f"no AWS credentials for {self._where()}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            ) from None
        except EndpointConnectionError as e:
            raise ConfigError(f"cannot reach the S3 endpoint of {self._where()}: {e}") from None
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise ConfigError(f"the S3 bucket {self.bucket!r} does not exist ({self._where()})") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"):
                raise ConfigError(
                    f"S3 refused the credentials for {self._where()} ({code}): check AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY and the bucket's policy"
                ) from None
            raise ConfigError(f"cannot use {self._where()}: {code or e}") from None
        except BotoCoreError as e:
            raise ConfigError(f"cannot use {self._where()}: {e}") from None

    async def check(self) -> None:
        """The bucket exists and the credentials are accepted; raises ConfigError (one line)."""
        await asyncio.to_thread(self._check)

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextlib.contextmanager
    def _errors(self, what: str, key: str) -> Iterator[None]:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise BlobNotFound(f"no blob {key} in {self.url}") from None
            raise BlobError(f"cannot {what} blob {key} in {self.url}: {code or e}") from e
        except (BotoCoreError, Boto3Error) as e:  # Boto3Error: a multipart upload that failed
            raise BlobError(f"cannot {what} blob {key} in {self.url}: {e}") from e

    def _put(self, key: str, data: bytes) -> str:
        with self._errors("write", key):
            if len(data) < self.multipart_threshold_bytes:
                self._s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
            else:  # in parts; S3 makes the object visible only once the upload completes
                from boto3.s3.transfer import TransferConfig

                transfer = TransferConfig(
                    multipart_threshold=self.multipart_threshold_bytes,
                    multipart_chunksize=self.multipart_chunk_bytes,
                )
                self._s3.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key), Config=transfer)
        return key

    def _get(self, key: str) -> bytes:
        with self._errors("read", key):
            return self._s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def _exists(self, key: str) -> bool:
        try:
            with self._errors("find", key):
                self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except BlobNotFound:
            return False

    def _delete(self, key: str) -> bool:
        existed = self._exists(key)
        with self._errors("delete", key):
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))
        return existed

    def _list(self, prefix: str) -> list[BlobInfo]:
        out: list[BlobInfo] = []
        with self._errors("list", prefix or "*"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj.get("Key", "")[len(self.prefix) :]
                    modified = obj.get("LastModified")
                    out.append(BlobInfo(key, int(obj.get("Size", 0)), modified.timestamp() if modified else 0.0))
        return sorted(out, key=lambda b: b.key)

    async def put(self, key: str, data: bytes) -> str:
        return await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists, key)

    async def list(self, prefix: str = "") -> list[BlobInfo]:
        return await asyncio.to_thread(self._list, prefix)


def blobs_from_url(url: str) -> BlobStore:
    """``file:///dir`` or ``s3://bucket/prefix[?endpoint=URL&region=R]``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file blob URL {url!r} names a host; use file:///absolute/dir")
        path = unquote(parts.path)
        if not path:
            raise ConfigError(f"file blob URL {url!r} names no directory")
        return FileBlobStore(path)
    if parts.scheme == "s3":
        opts: dict[str, Any] = dict(parse_qsl(parts.query))
        unknown = set(opts) - {"endpoint", "region"}
        if unknown:
            raise ConfigError(f"s3 blob URL {url!r}: unknown option(s) {', '.join(sorted(unknown))}")
        return S3BlobStore(
            parts.netloc, unquote(parts.path), endpoint_url=opts.get("endpoint"), region=opts.get("region")
        )
    raise ConfigError(f"unsupported blob URL {url!r}: use file:///dir or s3://bucket/prefix")


def blob_age_s(info: BlobInfo, now: float | None = None) -> float:
    return (time.time() if now is None else now) - info.modified_at


__all__ = ["BlobInfo", "BlobStore", "FileBlobStore", "S3BlobStore", "blob_age_s", "blobs_from_url", "check_key"]
