"""Where batch sources come from: a local directory or `s3://bucket/prefix`.

A `SourceSpec` is a small picklable description: the driver lists keys with it, and every
worker (a local process or a Ray task on another node) opens its own reader with it and
reads each source object directly, never through the driver. Keys are relative to the
source (`/`-separated), which is what the key templates expand.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from imaged.pipeline.storage import local
from imaged.pipeline.storage.s3 import S3Storage, configuration

S3_SCHEME = "s3://"
NO_SOURCE_DIR = "source directory not found"
NO_BUCKET = "--source s3:// needs a bucket name"


class SourceSpecError(ValueError):
    pass


class SourceReader(Protocol):
    async def read(self, key: str, limit: int) -> bytes:
        """The object's bytes (StorageError when unreadable or over `limit`)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class LocalSource:
    root: str  # absolute
    exclude: frozenset[str] = frozenset()  # absolute paths never listed (outputs, manifest)

    @property
    def label(self) -> str:
        return self.root

    async def keys(self) -> AsyncIterator[str]:
        iterator = local.list_keys(self.root, self.exclude)
        while True:
            # A directory of a million files: list in chunks off the event loop.
            chunk = await asyncio.to_thread(_take, iterator, 1000)
            for key in chunk:
                yield key
            if len(chunk) < 1000:
                return

    def reader(self) -> SourceReader:
        return _LocalReader(self.root)


def _take(iterator: Iterator[str], count: int) -> list[str]:
    out: list[str] = []
    for key in iterator:
        out.append(key)
        if len(out) == count:
            break
    return out


class _LocalReader:
    def __init__(self, root: str) -> None:
        self.root = root

    async def read(self, key: str, limit: int) -> bytes:
        return local.read_key(self.root, key, limit)

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class S3Source:
    bucket: str
    prefix: str = ""  # "" or ends with `/`
    # The AWS_* variables the workers use (a Ray node has its own environment).
    environ: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}"

    def _storage(self) -> S3Storage:
        return S3Storage.from_environ(self.environ)

    async def keys(self) -> AsyncIterator[str]:
        storage = self._storage()
        try:
            async for key in storage.list_keys(self.bucket, self.prefix):
                yield key[len(self.prefix) :]
        finally:
            await storage.close()

    def reader(self) -> SourceReader:
        return _S3Reader(self._storage(), self.bucket, self.prefix)


class _S3Reader:
    def __init__(self, storage: S3Storage, bucket: str, prefix: str) -> None:
        self.storage = storage
        self.bucket = bucket
        self.prefix = prefix

    async def read(self, key: str, limit: int) -> bytes:
        return await self.storage.get(self.bucket, self.prefix + key, limit)

    async def close(self) -> None:
        await self.storage.close()


Source = LocalSource | S3Source


def parse_source(text: str, environ: Mapping[str, str], exclude: frozenset[str]) -> Source:
    """`s3://bucket[/prefix]` (the prefix taken as a folder), else a local directory."""
    if text.startswith(S3_SCHEME):
        bucket, _, prefix = text[len(S3_SCHEME) :].partition("/")
        if not bucket:
            raise SourceSpecError(NO_BUCKET)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return S3Source(bucket, prefix, configuration(environ))
    root = os.path.abspath(text)
    if not os.path.isdir(root):
        raise SourceSpecError(f"{NO_SOURCE_DIR}: {text}")
    return LocalSource(root, exclude)
