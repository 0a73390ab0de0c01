"""The JSONL manifest: appended and flushed per record, the latest line per source wins,
a torn last line is ignored and cut off before the next append."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imaged.batch.manifest import Manifest, ManifestError, done_sources


def test_records_are_flushed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    manifest = Manifest(str(path))
    manifest.write({"source": "ü.jpg", "status": "success", "durationMs": 3})
    # Visible to another reader before close: a crash loses nothing written.
    assert json.loads(path.read_text("utf-8")) == {
        "source": "ü.jpg",
        "status": "success",
        "durationMs": 3,
    }
    manifest.close()


def test_latest_line_wins(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    lines = [
        {"source": "a", "status": "failed"},
        {"source": "a", "status": "success"},
        {"source": "b", "status": "success"},
        {"source": "b", "status": "failed"},
        {"source": "c", "status": "success"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert done_sources(str(path)) == {"a", "c"}
    assert done_sources(str(tmp_path / "missing.jsonl")) == set()


def test_torn_last_line_is_ignored_then_cut(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"source":"a","status":"success"}\n{"source":"b","stat')
    assert done_sources(str(path)) == {"a"}
    manifest = Manifest(str(path))
    manifest.write({"source": "b", "status": "success"})
    manifest.close()
    assert path.read_text().splitlines() == [
        '{"source":"a","status":"success"}',
        '{"source":"b","status":"success"}',
    ]
    path.write_text('{"source":"only-torn"')
    Manifest(str(path)).close()
    assert path.read_text() == ""


def test_a_broken_line_before_the_end_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('not json\n{"source":"a","status":"success"}\n')
    with pytest.raises(ManifestError, match="line 1 is not a manifest record"):
        done_sources(str(path))
