"""Reading a contributions file or a watchlist: a local path (or ``file://``), an HTTP(S) URL, an S3
object (``s3://bucket/key``, boto3; ``?endpoint=http://host:port&region=…`` for S3-compatible
servers) or a blob of the host's store (``blob:key``). Blocking reads run in threads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import aiohttp

from .constants import SOURCE_TIMEOUT_S
from .errors import SourceError

if TYPE_CHECKING:
    from katopotato.plugin import BlobStore


def _read_path(path: Path) -> bytes:
    path = path.expanduser()
    try:
        return path.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e


def _read_s3(url: str) -> bytes:
    import boto3
    import botocore.exceptions

    parts = urlsplit(url)
    bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
    if not bucket or not key:
        raise SourceError(f"bad S3 URL {url!r}: use s3://bucket/key")
    query = dict(parse_qsl(parts.query))
    kwargs: dict[str, Any] = {}
    if "endpoint" in query:
        kwargs["endpoint_url"] = query["endpoint"]
    if "region" in query:
        kwargs["region_name"] = query["region"]
    try:
        client = boto3.client("s3", **kwargs)
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise SourceError(f"cannot read s3://{bucket}/{key}: {' '.join(str(e).split())}") from e


async def _read_http(url: str, timeout_s: float) -> bytes:
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            if resp.status >= 400:
                raise SourceError(f"cannot read {url}: HTTP {resp.status} {resp.reason or ''}".rstrip())
            return await resp.read()
    except (aiohttp.ClientError, TimeoutError) as e:
        raise SourceError(f"cannot read {url}: {type(e).__name__}: {' '.join(str(e).split())}") from e


async def read_source(source: str, *, blobs: BlobStore | None = None, timeout_s: float = SOURCE_TIMEOUT_S) -> bytes:
    """The bytes of ``source``; SourceError (one line) when it cannot be read."""
    if not source:
        raise SourceError("no source given")
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return await _read_http(source, timeout_s)
    if scheme == "s3":
        return await asyncio.to_thread(_read_s3, source)
    if source.startswith("blob:"):
        if blobs is None:
            raise SourceError(f"{source}: no blob store here")
        try:
            return await blobs.get(source.removeprefix("blob:"))
        except Exception as e:
            raise SourceError(f"cannot read {source}: {e}") from e
    if scheme == "file":
        return await asyncio.to_thread(_read_path, Path(unquote(urlsplit(source).path)))
    if scheme and len(scheme) > 1:
        raise SourceError(f"unsupported source {source!r}: use a path, http(s)://, s3:// or blob:")
    return await asyncio.to_thread(_read_path, Path(source))


__all__ = ["read_source"]
