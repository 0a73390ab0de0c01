"""The JSONL manifest (batch.md, "Manifest"): one line per finished source, appended and
flushed at once, so a crash loses at most the sources in flight.

Reading it for `--resume` takes the *latest* line of each source; a torn last line (the
crash happened mid-write) is ignored, and cut off before anything is appended, so the next
line starts on a line of its own.
"""

from __future__ import annotations

import json
import os
from typing import Any, TextIO

from imaged.jsonfmt import dumps, escape_surrogates
from imaged.pipeline import SUCCESS


class ManifestError(Exception):
    """The manifest cannot be read or written (exit status 2 before any work)."""


def _complete_length(data: bytes) -> int:
    """Bytes up to and including the last newline: the complete lines."""
    return data.rfind(b"\n") + 1


def done_sources(path: str) -> set[str]:
    """Sources whose latest manifest line says `success`."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror}") from exc
    latest: dict[str, bool] = {}
    for number, line in enumerate(data[: _complete_length(data)].splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            source, status = record["source"], record["status"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ManifestError(f"manifest {path} line {number} is not a manifest record") from exc
        latest[str(source)] = status == SUCCESS
    return {source for source, ok in latest.items() if ok}


class Manifest:
    """Appends records; each line is written and flushed as one `write`."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._file: TextIO = open(path, "a+", encoding="utf-8")  # noqa: SIM115
            self._cut_torn_line()
        except OSError as exc:
            raise ManifestError(f"cannot open the manifest {path}: {exc.strerror}") from exc

    def _cut_torn_line(self) -> None:
        fd = self._file.fileno()
        size = os.fstat(fd).st_size
        if size == 0:
            return
        tail = os.pread(fd, min(size, 1 << 20), max(0, size - (1 << 20)))
        if tail.endswith(b"\n"):
            return
        keep = _complete_length(tail)
        if keep == 0 and size > len(tail):  # a torn line longer than 1 MiB: find its start
            with open(self.path, "rb") as file:
                keep, base = _complete_length(file.read()), 0
        else:
            base = size - len(tail)
        os.truncate(fd, base + keep)

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(escape_surrogates(dumps(record)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
