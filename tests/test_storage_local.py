"""The local-directory back-end: mapping, atomic writes, and every escape attempt refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imaged.pipeline.storage.base import StorageError
from imaged.pipeline.storage.local import LocalStorage, list_keys, path_segments, read_key


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


async def test_writes_bucket_and_key_with_nested_directories(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path / "out"))
    url = await storage.put("photos", "2024/06/a b (1).jpg", b"\xff\xd8data", "image/jpeg", None)
    target = tmp_path / "out" / "photos" / "2024" / "06" / "a b (1).jpg"
    assert target.read_bytes() == b"\xff\xd8data"
    assert url == f"file://{target}"
    assert files_under(tmp_path) == ["out/photos/2024/06/a b (1).jpg"]  # no temp file left


async def test_relative_root_is_reported_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = LocalStorage("rel")
    url = await storage.put("b", "k.png", b"x", "image/png", "public-read")
    assert url == f"file://{tmp_path}/rel/b/k.png"
    assert (tmp_path / "rel" / "b" / "k.png").read_bytes() == b"x"


async def test_overwrite_replaces_the_file_atomically(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    await storage.put("b", "k", b"old contents", "image/png", None)
    old = tmp_path / "b" / "k"
    inode = old.stat().st_ino
    await storage.put("b", "k", b"new", "image/png", None)
    assert old.read_bytes() == b"new"
    assert old.stat().st_ino != inode  # a new file renamed into place, not rewritten
    assert files_under(tmp_path) == ["b/k"]


async def test_empty_output_is_written(tmp_path: Path) -> None:
    await LocalStorage(str(tmp_path)).put("b", "empty", b"", "application/octet-stream", None)
    assert (tmp_path / "b" / "empty").read_bytes() == b""


@pytest.mark.parametrize(
    ("bucket", "key", "reason"),
    [
        ("b", "../escape", "'..' path segments are not allowed"),
        ("b", "a/../../escape", "'..' path segments are not allowed"),
        ("b", "..", "'..' path segments are not allowed"),
        ("b", "./k", "'.' path segments are not allowed"),
        ("b", "/etc/passwd", "absolute keys are not allowed"),
        ("b", "//k", "absolute keys are not allowed"),
        ("b", "a//k", "empty path segments are not allowed"),
        ("b", "dir/", "empty path segments are not allowed"),
        ("..", "k", "must be a single path segment"),
        (".", "k", "must be a single path segment"),
        ("a/b", "k", "must be a single path segment"),
        ("/abs", "k", "must be a single path segment"),
        ("b", "nul\x00byte", "NUL characters are not allowed"),
        ("b\x00", "k", "NUL characters are not allowed"),
        ("b", "surrogate\udc80", "not valid Unicode text"),
    ],
)
async def test_escapes_are_refused(tmp_path: Path, bucket: str, key: str, reason: str) -> None:
    root = tmp_path / "root"
    storage = LocalStorage(str(root))
    with pytest.raises(StorageError) as info:
        await storage.put(bucket, key, b"data", "image/png", None)
    assert reason in str(info.value)
    assert files_under(tmp_path) == []


def test_path_segments() -> None:
    assert path_segments("b", "a/b/c.png") == ["b", "a", "b", "c.png"]
    assert path_segments("b", "..x/x..") == ["b", "..x", "x.."]  # dots inside names are fine
    assert path_segments("b", "a\\..\\b") == ["b", "a\\..\\b"]  # a backslash is just a character


async def test_symlinked_bucket_pointing_outside_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "b").symlink_to(outside)
    with pytest.raises(StorageError, match="'b' is a symbolic link"):
        await LocalStorage(str(root)).put("b", "k.png", b"data", "image/png", None)
    assert list(outside.iterdir()) == []


async def test_symlinked_directory_inside_the_key_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "b" / "x").mkdir(parents=True)
    outside.mkdir()
    (root / "b" / "x" / "link").symlink_to(outside)
    with pytest.raises(StorageError, match="'link' is a symbolic link"):
        await LocalStorage(str(root)).put("b", "x/link/k.png", b"data", "image/png", None)
    assert list(outside.iterdir()) == []
    # Even a link that stays inside the root is refused: links are never followed.
    (root / "b" / "inner").symlink_to(root / "b" / "x")
    with pytest.raises(StorageError, match="symbolic link"):
        await LocalStorage(str(root)).put("b", "inner/k.png", b"data", "image/png", None)


async def test_symlink_at_the_target_name_is_replaced_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "victim.txt"
    (root / "b").mkdir(parents=True)
    outside.write_bytes(b"precious")
    (root / "b" / "k").symlink_to(outside)
    await LocalStorage(str(root)).put("b", "k", b"data", "image/png", None)
    assert outside.read_bytes() == b"precious"
    assert not (root / "b" / "k").is_symlink()
    assert (root / "b" / "k").read_bytes() == b"data"


async def test_a_file_in_the_way_of_a_directory_fails_cleanly(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    await storage.put("b", "a", b"file", "image/png", None)
    with pytest.raises(StorageError, match="'a' is not a directory"):
        await storage.put("b", "a/k", b"data", "image/png", None)
    await storage.put("b", "d/k", b"data", "image/png", None)
    with pytest.raises(StorageError, match="cannot write 'b/d'"):
        await storage.put("b", "d", b"data", "image/png", None)
    assert files_under(tmp_path) == ["b/a", "b/d/k"]


async def test_root_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(StorageError, match="output directory unavailable"):
        await LocalStorage(str(blocker / "out")).put("b", "k", b"data", "image/png", None)


def test_list_keys_walks_in_order_without_links_or_temporaries(tmp_path: Path) -> None:
    for key in ["b.jpg", "a/z.png", "a/b/c.gif", "ü n/x.webp", "a/.imaged-0123.tmp"]:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(b"x")
    os.symlink(tmp_path / "b.jpg", tmp_path / "link.jpg")
    os.symlink(tmp_path / "a", tmp_path / "linkdir")
    os.mkfifo(tmp_path / "fifo")
    assert list(list_keys(str(tmp_path))) == ["b.jpg", "a/z.png", "a/b/c.gif", "ü n/x.webp"]
    excluded = frozenset({str(tmp_path / "a"), str(tmp_path / "b.jpg")})
    assert list(list_keys(str(tmp_path), excluded)) == ["ü n/x.webp"]


def test_read_key_reads_within_the_limit_and_never_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d/f.bin").write_bytes(b"12345")
    assert read_key(str(tmp_path), "d/f.bin", 5) == b"12345"
    with pytest.raises(StorageError, match="source of 5 bytes exceeds the body limit of 4 bytes"):
        read_key(str(tmp_path), "d/f.bin", 4)
    os.symlink(tmp_path / "d", tmp_path / "l")
    with pytest.raises(StorageError, match=r"cannot read 'l/f\.bin'"):
        read_key(str(tmp_path), "l/f.bin", 5)
    with pytest.raises(StorageError, match="invalid key"):
        read_key(str(tmp_path), "d/../d/f.bin", 5)
