"""Usable CPUs and memory limits from fabricated cgroup v1/v2 trees (resources.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from imaged import resources
from imaged.resources import (
    Cpus,
    cgroup_cpus,
    cgroup_memory,
    default_memory_budget,
    parse_cfs,
    parse_cpu_max,
    parse_memory_limit_in_bytes,
    parse_memory_max,
    usable_cpus,
)


def _tree(tmp_path: Path, proc: str, files: Mapping[str, str | bytes]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    proc_cgroup = tmp_path / "proc-self-cgroup"
    proc_cgroup.write_text(proc)
    return root, proc_cgroup


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("max 100000", None),
        ("max", None),
        ("200000 100000", 2),
        ("150000 100000", 2),
        ("50000 100000", 1),
        ("1 100000", 1),
        ("400000 100000\n", 4),
        ("100000", 1),  # period omitted: the kernel default 100000
        ("0 100000", None),
        ("-1 100000", None),
        ("abc 100000", None),
        ("100000 0", None),
        ("1 2 3", None),
        ("", None),
        (None, None),
        ("9" * 40 + " 100000", None),
    ],
)
def test_cpu_max(text: str | None, cpus: int | None) -> None:
    assert parse_cpu_max(text) == cpus


@pytest.mark.parametrize(
    ("quota", "period", "cpus"),
    [
        ("-1", "100000", None),
        ("150000", "100000", 2),
        ("300000", "100000", 3),
        ("25000", "50000", 1),
        ("x", "100000", None),
        ("100000", "", None),
        (None, None, None),
    ],
)
def test_cfs(quota: str | None, period: str | None, cpus: int | None) -> None:
    assert parse_cfs(quota, period) == cpus


def test_memory_files() -> None:
    assert parse_memory_max("max") is None
    assert parse_memory_max("2147483648\n") == 2147483648
    assert parse_memory_max("0") is None
    assert parse_memory_max("junk") is None
    assert parse_memory_limit_in_bytes("9223372036854771712") is None  # v1 "unlimited"
    assert parse_memory_limit_in_bytes(str(1 << 60)) is None
    assert parse_memory_limit_in_bytes(str((1 << 60) - 1)) == (1 << 60) - 1
    assert parse_memory_limit_in_bytes("1073741824") == 1073741824


def test_v2_own_cgroup_and_ancestors(tmp_path: Path) -> None:
    root, proc = _tree(
        tmp_path,
        "0::/system.slice/app.service\n",
        {
            "cpu.max": "max 100000",
            "system.slice/cpu.max": "300000 100000",
            "system.slice/app.service/cpu.max": "150000 100000",
            "system.slice/memory.max": "1073741824",
            "system.slice/app.service/memory.max": "max",
        },
    )
    assert cgroup_cpus(root, proc) == 2  # 1.5 CPUs rounded up
    assert cgroup_memory(root, proc) == 1073741824  # the ancestor's limit applies
    assert usable_cpus(root, proc, affinity=64) == Cpus(2, "cgroup")
    assert usable_cpus(root, proc, affinity=1) == Cpus(1, "affinity")
    assert default_memory_budget(root, proc) == 805306368  # 75 %


def test_v2_container_namespace(tmp_path: Path) -> None:
    """Inside a cgroup namespace the path is `/`: the mount itself is the container's."""
    root, proc = _tree(tmp_path, "0::/\n", {"cpu.max": "400000 100000", "memory.max": "524288000"})
    assert usable_cpus(root, proc, affinity=64) == Cpus(4, "cgroup")
    assert cgroup_memory(root, proc) == 524288000


def test_v2_no_limits(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, "0::/a\n", {"a/cpu.max": "max 100000", "a/memory.max": "max"})
    assert usable_cpus(root, proc, affinity=3) == Cpus(3, "affinity")
    assert cgroup_memory(root, proc) is None
    assert default_memory_budget(root, proc) == 0


V1 = (
    "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n",
    {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/cpu.cfs_quota_us": "-1",
        "cpu,cpuacct/cpu.cfs_period_us": "100000",
        "memory/docker/abc/memory.limit_in_bytes": "2147483648",
        "memory/memory.limit_in_bytes": "9223372036854771712",
    },
)
# v1 controllers plus an empty v2 hierarchy at `unified` (this sandbox's layout).
HYBRID = (
    "4:memory:/job\n1:cpu:/\n0::/\n",
    {
        "unified/cgroup.procs": "1",
        "cpu/cpu.cfs_quota_us": "100000",
        "cpu/cpu.cfs_period_us": "100000",
        "memory/job/memory.limit_in_bytes": "314572800",
    },
)


@pytest.mark.parametrize(
    ("tree", "cpus", "memory"), [(V1, 3, 2147483648), (HYBRID, 1, 314572800)], ids=["v1", "hybrid"]
)
def test_v1(tmp_path: Path, tree: tuple[str, dict[str, str]], cpus: int, memory: int) -> None:
    root, proc = _tree(tmp_path, *tree)
    assert usable_cpus(root, proc, affinity=16) == Cpus(cpus, "cgroup")
    assert cgroup_memory(root, proc) == memory


def test_v1_no_quota(tmp_path: Path) -> None:
    root, proc = _tree(
        tmp_path,
        "4:cpu,cpuacct:/\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
    )
    assert usable_cpus(root, proc, affinity=8) == Cpus(8, "affinity")


@pytest.mark.parametrize(
    "files",
    [
        {"cpu.max": b"\xff\xfe garbage", "memory.max": b"\x00\x01"},
        {"cpu.max": "1" * 10000, "memory.max": "2" * 10000},
        {"cpu.max": "", "memory.max": ""},
        {},
    ],
)
def test_odd_files_mean_no_limit(tmp_path: Path, files: dict[str, str | bytes]) -> None:
    root, proc = _tree(tmp_path, "0::/\n", files)
    assert usable_cpus(root, proc, affinity=5) == Cpus(5, "affinity")
    assert cgroup_memory(root, proc) is None


def test_odd_proc_cgroup(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path, "", {"cpu.max": "100000 100000"})
    for text in ("", "garbage", "0::relative", "::::", "\x00"):
        proc = tmp_path / "odd"
        proc.write_text(text)
        assert usable_cpus(root, proc, affinity=4) == Cpus(4, "affinity")
    assert usable_cpus(root, tmp_path / "missing", affinity=4) == Cpus(4, "affinity")
    assert usable_cpus(tmp_path / "no-root", tmp_path / "missing", affinity=4).count == 4


def test_unreadable_file(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, "0::/\n", {})
    (root / "cpu.max").mkdir()  # a directory where a file should be
    assert usable_cpus(root, proc, affinity=2) == Cpus(2, "affinity")


def test_path_escape_is_ignored(tmp_path: Path) -> None:
    """`..` in the cgroup path never leaves the mount."""
    root, proc = _tree(tmp_path, "0::/../../x\n", {"cpu.max": "100000 100000"})
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "cpu.max").write_text("999")
    assert cgroup_cpus(root, proc) == 1


def test_this_machine() -> None:
    """The real files: never more than the affinity CPUs, at least 1."""
    cpus = usable_cpus()
    assert 1 <= cpus.count <= len(os.sched_getaffinity(0))
    assert cpus.source in ("affinity", "cgroup")
    assert resources.default_concurrency() == cpus.count
