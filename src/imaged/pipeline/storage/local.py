"""Local-directory back-end (`--output-dir DIR`): object `key` of `bucket` is the file
`DIR/<bucket>/<key>`.

Clients choose bucket and key, so the mapping must never leave DIR:

* the bucket is one path segment; the key is relative (no leading `/`) and its `/`-separated
  segments are non-empty and neither `.` nor `..`; NUL and unencodable text are refused;
* directories are created and entered one segment at a time relative to an open directory
  descriptor with `O_NOFOLLOW`, so a symbolic link anywhere below DIR (planted before or
  during the request) is refused instead of followed; DIR itself may be a link (the
  administrator's choice);
* the file is written to a fresh temporary name in its final directory, fsynced and
  renamed over the target, so readers see the old file or the complete new one; an
  existing symbolic link at the target name is replaced, never written through.

Bucket directories are created on demand. `acl` and the content type have no meaning for
plain files and are ignored (the content type is still validated by the executor). The
reported URL is `file://` + the absolute path, not percent-encoded (like the S3 URLs).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator

from imaged.pipeline.storage.base import StorageError, too_large

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_TEMP_PREFIX = ".imaged-"
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _check_text(what: str, value: str) -> None:
    if "\x00" in value:
        raise StorageError(f"invalid {what} '{value}': NUL characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StorageError(f"invalid {what}: not valid Unicode text") from exc


def path_segments(bucket: str, key: str) -> list[str]:
    """The directory segments and file name for `bucket`/`key`, or StorageError."""
    _check_text("bucket", bucket)
    _check_text("key", key)
    if not bucket or "/" in bucket or bucket in (".", ".."):
        raise StorageError(f"invalid bucket '{bucket}': must be a single path segment")
    return [bucket, *key_segments(key)]


def key_segments(key: str) -> list[str]:
    """The `/`-separated segments of a relative `key`, or StorageError (the rules above)."""
    _check_text("key", key)
    if key.startswith("/"):
        raise StorageError(f"invalid key '{key}': absolute keys are not allowed")
    segments = key.split("/")
    for segment in segments:
        if segment in (".", ".."):
            raise StorageError(f"invalid key '{key}': '{segment}' path segments are not allowed")
        if not segment:
            raise StorageError(f"invalid key '{key}': empty path segments are not allowed")
    return segments


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


class LocalStorage:
    backend = "local"

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def object_url(self, bucket: str, key: str) -> str:
        return "file://" + os.path.join(self.root, bucket, key)

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str, acl: str | None
    ) -> str:
        segments = path_segments(bucket, key)
        await asyncio.to_thread(self._write, segments, data, f"{bucket}/{key}")
        return self.object_url(bucket, key)

    async def close(self) -> None:
        return None

    def _write(self, segments: list[str], data: bytes, where: str) -> None:
        try:
            os.makedirs(self.root, exist_ok=True)
            dir_fd = os.open(self.root, _DIR_FLAGS)
        except OSError as exc:
            raise StorageError(f"output directory unavailable: {exc.strerror}") from exc
        try:
            for segment in segments[:-1]:
                child = self._enter(dir_fd, segment, where)
                os.close(dir_fd)
                dir_fd = child
            self._write_file(dir_fd, segments[-1], data, where)
        finally:
            os.close(dir_fd)

    @staticmethod
    def _enter(dir_fd: int, name: str, where: str) -> int:
        """Create (if needed) and open the subdirectory `name` of `dir_fd` without
        following a symbolic link; returns its descriptor."""
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=dir_fd)
            child = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP or _is_link(dir_fd, name):
                raise StorageError(f"cannot write '{where}': '{name}' is a symbolic link") from exc
            if exc.errno == errno.ENOTDIR:
                raise StorageError(f"cannot write '{where}': '{name}' is not a directory") from exc
            raise StorageError(f"cannot write '{where}': {exc.strerror}") from exc
        return child

    @staticmethod
    def _write_file(dir_fd: int, name: str, data: bytes, where: str) -> None:
        temp = f"{_TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(temp, _FILE_FLAGS, 0o644, dir_fd=dir_fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise StorageError(f"cannot write '{where}': it is a directory") from exc
            raise StorageError(f"cannot write '{where}': {exc.strerror}") from exc
        with contextlib.suppress(OSError):  # the data is written; this is best effort
            os.fsync(dir_fd)


# --- reading a directory tree as objects (the sources of `imaged batch`) ------------------


def _valid_name(name: str) -> bool:
    try:
        _check_text("key", name)
    except StorageError:
        return False
    return not (name.startswith(_TEMP_PREFIX) and name.endswith(".tmp"))


def list_keys(root: str, exclude: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every regular file below `root` as a key (`/`-separated, relative), in sorted order,
    by the rules of writing: symbolic links are neither followed nor listed, names that are
    not valid key text and our own temporary files are skipped, and so is every absolute
    path in `exclude` (a directory there excludes its subtree)."""
    stack = [(os.path.abspath(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        files = []
        for entry in entries:
            if not _valid_name(entry.name) or entry.path in exclude:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{prefix}{entry.name}/"))
            elif entry.is_file(follow_symlinks=False):
                files.append(prefix + entry.name)
        # Depth first, in name order: files of a directory before its subdirectories.
        yield from reversed(files)


def read_key(root: str, key: str, limit: int) -> bytes:
    """The file `root/key`, at most `limit` bytes, never through a symbolic link below
    `root`; StorageError if it cannot be read or is larger."""
    segments = key_segments(key)
    try:
        fd = os.open(root, _DIR_FLAGS)
        try:
            for segment in segments[:-1]:
                child = os.open(segment, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = child
            file_fd = os.open(segments[-1], _READ_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        with os.fdopen(file_fd, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                raise StorageError(too_large(size, limit))
            data = file.read(limit + 1)
    except OSError as exc:
        raise StorageError(f"cannot read '{key}': {exc.strerror}") from exc
    if len(data) > limit:  # it grew while we read it
        raise StorageError(too_large(len(data), limit))
    return data
