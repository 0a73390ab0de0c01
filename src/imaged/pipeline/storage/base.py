"""The storage interface every pipeline back-end implements."""

from __future__ import annotations

from typing import Protocol


class StorageError(Exception):
    """A failed write (or, for batch sources, read); its message becomes the task's (or the
    source's) `error` text verbatim."""


def too_large(size: int, limit: int) -> str:
    """The error of a batch source object over `--body-limit`, from any back-end."""
    return f"source of {size} bytes exceeds the body limit of {limit} bytes"


class Storage(Protocol):
    """Stores one encoded output and reports where it went (informational URL)."""

    backend: str  # `s3` or `local`: the label of the storage metrics

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str, acl: str | None
    ) -> str:
        """Write `data` as object `key` of `bucket`; returns the object URL. Raises
        `StorageError` (or any exception) on failure; a failed write leaves no object."""
        ...

    async def close(self) -> None:
        """Release connections; called once at server shutdown."""
        ...
