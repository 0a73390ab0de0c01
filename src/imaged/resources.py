"""Usable CPUs and the memory limit of this process, from affinity and cgroups (resources.md).

Every reader takes the cgroup mount (`root`) and the process's cgroup file (`proc_cgroup`,
normally /proc/self/cgroup) as parameters, so tests feed it fabricated trees. A file that is
missing, unreadable or not understood means "no limit" there: these functions never raise.

The process's cgroup is the path of /proc/self/cgroup (`0::<path>` for v2, `<n>:<controllers>:
<path>` for v1) below the mount. A limit on an ancestor applies too, so every directory from
that cgroup up to the mount is read and the smallest limit wins. Inside a container with its
own cgroup namespace the path is `/` and the mount itself is the container's cgroup.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX × page size ≈ 2^63).
V1_NO_MEMORY_LIMIT = 1 << 60
SOURCE_AFFINITY = "affinity"
SOURCE_CGROUP = "cgroup"
_INTEGER = re.compile(r"-?[0-9]{1,30}")
_MAX_FILE = 4096  # no cgroup file we read is longer; a bigger one is not understood


@dataclass(frozen=True)
class Cpus:
    """The usable CPU count and what decided it (`affinity` or `cgroup`)."""

    count: int
    source: str


def _read(path: Path) -> str | None:
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_FILE + 1)
    except (OSError, ValueError):
        return None
    if len(raw) > _MAX_FILE:
        return None
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return None


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def own_cgroups(proc_cgroup: Path = PROC_SELF_CGROUP) -> dict[str, str]:
    """`{controller: path}` from /proc/self/cgroup; the v2 hierarchy is the key `""`."""
    text = _read(proc_cgroup)
    groups: dict[str, str] = {}
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        _, controllers, path = parts
        if parts[0] == "0" and controllers == "":
            groups[""] = path
            continue
        for controller in controllers.split(","):
            if controller:
                groups[controller] = path
    return groups


def _directories(base: Path, path: str) -> list[Path]:
    """`base/path` and every ancestor up to `base` (only those that exist)."""
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    dirs = [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [d for d in dirs if d.is_dir()]


def _v2_base(root: Path) -> Path:
    """The v2 mount: `root`, or `root/unified` on a hybrid (v1 + v2) host."""
    unified = root / "unified"
    return unified if unified.is_dir() and not (root / "cgroup.controllers").exists() else root


def _v1_base(root: Path, controller: str, groups: dict[str, str]) -> Path | None:
    """The v1 mount of `controller` (e.g. root/cpu,cpuacct or root/cpu)."""
    if controller not in groups:
        return None
    names = (controller, "cpu,cpuacct", "cpuacct,cpu") if controller == "cpu" else (controller,)
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def parse_cpu_max(text: str | None) -> int | None:
    """cgroup v2 `cpu.max` (`<quota> <period>`, `max` = no quota) → CPUs, rounded up."""
    fields = (text or "").split()
    if len(fields) not in (1, 2) or fields[0] == "max":
        return None
    quota = _int(fields[0])
    period = _int(fields[1]) if len(fields) == 2 else 100000
    return _quota_cpus(quota, period)


def _quota_cpus(quota: int | None, period: int | None) -> int | None:
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def parse_cfs(quota_text: str | None, period_text: str | None) -> int | None:
    """cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (−1 = no quota) → CPUs."""
    quota = _int(quota_text or "")
    period = _int(period_text or "")
    return _quota_cpus(quota, period)


def parse_memory_max(text: str | None) -> int | None:
    """cgroup v2 `memory.max` (`max` = none) → bytes."""
    value = _int(text or "")
    return value if value is not None and value > 0 else None


def parse_memory_limit_in_bytes(text: str | None) -> int | None:
    """cgroup v1 `memory.limit_in_bytes`: a limit only below 2^60."""
    value = _int(text or "")
    return value if value is not None and 0 < value < V1_NO_MEMORY_LIMIT else None


def _smallest(values: list[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _cgroup_limit(
    root: Path,
    proc_cgroup: Path,
    v2: Callable[[Path], int | None],
    controller: str,
    v1: Callable[[Path], int | None],
) -> int | None:
    """The smallest limit `v2` reads in this process's v2 cgroup and its ancestors, else
    the smallest `v1` reads in its v1 `controller` hierarchy; None = no limit."""
    groups = own_cgroups(proc_cgroup)
    if "" in groups:
        found = _smallest([v2(d) for d in _directories(_v2_base(root), groups[""])])
        if found is not None:
            return found
    base = _v1_base(root, controller, groups)
    if base is None:
        return None
    return _smallest([v1(d) for d in _directories(base, groups[controller])])


def cgroup_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int | None:
    """The CPU quota of this process's cgroup (v2, else v1), rounded up; None = no quota."""
    return _cgroup_limit(
        root,
        proc_cgroup,
        lambda d: parse_cpu_max(_read(d / "cpu.max")),
        "cpu",
        lambda d: parse_cfs(_read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")),
    )


def cgroup_memory(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int | None:
    """The memory limit in bytes of this process's cgroup (v2, else v1); None = none."""
    return _cgroup_limit(
        root,
        proc_cgroup,
        lambda d: parse_memory_max(_read(d / "memory.max")),
        "memory",
        lambda d: parse_memory_limit_in_bytes(_read(d / "memory.limit_in_bytes")),
    )


def affinity_cpus() -> int:
    """The CPUs this process may run on (`sched_getaffinity`, else `cpu_count`)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def usable_cpus(
    root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_SELF_CGROUP,
    affinity: int | None = None,
) -> Cpus:
    """The smallest of the affinity CPU count and the cgroup quota, at least 1."""
    cpus = max(1, affinity if affinity is not None else affinity_cpus())
    quota = cgroup_cpus(root, proc_cgroup)
    if quota is not None and quota < cpus:
        return Cpus(quota, SOURCE_CGROUP)
    return Cpus(cpus, SOURCE_AFFINITY)


def default_concurrency() -> int:
    """The default of `--concurrency` and `imaged batch --workers`."""
    return usable_cpus().count


# The default memory budget: this share of the cgroup memory limit.
BUDGET_SHARE = 0.75


def default_memory_budget(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """75 % of the cgroup memory limit, or 0 (no budget) when there is none."""
    limit = cgroup_memory(root, proc_cgroup)
    return 0 if limit is None else int(limit * BUDGET_SHARE)
