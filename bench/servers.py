"""Start the servers under test on loopback: imaged (this checkout) and thumbor (own venv).

Each server is a child process whose pid is the process doing the work, so /proc gives its
CPU time and memory directly (thumbor runs as one process with an engine thread pool).
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from bench.workloads import CORPUS, ROOT

THUMBOR_VENV = ROOT / "bench" / ".venv-thumbor"
THUMBOR_REQUIREMENTS = ROOT / "bench" / "thumbor-requirements.txt"

# name → (shared library glob under the multiarch dirs, extra environment)
ALLOCATORS: dict[str, tuple[str | None, dict[str, str]]] = {
    "glibc": (None, {}),
    "glibc-arena2": (None, {"MALLOC_ARENA_MAX": "2"}),
    "mimalloc": ("libmimalloc.so.*", {}),
    "jemalloc": ("libjemalloc.so.*", {}),
}
_LIB_DIRS = ("/usr/lib/*-linux-gnu", "/usr/lib", "/usr/local/lib")


def find_library(pattern: str) -> str | None:
    """First match of `pattern` in the usual library directories (sorted: the soname link)."""
    for directory in _LIB_DIRS:
        matches = sorted(glob.glob(f"{directory}/{pattern}"))
        if matches:
            return matches[0]
    return None


def allocator_env(name: str) -> dict[str, str]:
    """Environment that selects allocator `name`; SystemExit with the install hint if absent."""
    if name not in ALLOCATORS:
        raise SystemExit(f"unknown allocator {name!r} (known: {', '.join(ALLOCATORS)})")
    pattern, extra = ALLOCATORS[name]
    env = dict(extra)
    if pattern is not None:
        path = find_library(pattern)
        if path is None:
            package = "libmimalloc2.0" if name == "mimalloc" else "libjemalloc2"
            raise SystemExit(f"{name} not installed: apt-get install -y {package}")
        env["LD_PRELOAD"] = path
    return env


def available_allocators() -> list[str]:
    found: list[str] = []
    for name, (pattern, _) in ALLOCATORS.items():
        if pattern is None or find_library(pattern):
            found.append(name)
    return found


def default_allocator() -> str:
    """What the project's own launchers use: mimalloc when installed (docs/performance.md)."""
    return "mimalloc" if find_library("libmimalloc.so.*") else "glibc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_ARENA_MAX")}
    for name in ("PORT", "HOST", "UNIX_SOCKET", "CONCURRENCY"):
        env.pop(name, None)
    env.update(extra)
    return env


class Server:
    """A child process serving HTTP on 127.0.0.1:`port`."""

    name = "server"

    def __init__(self, cmd: Sequence[str], env: Mapping[str, str], port: int, ready: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives with the server)
            prefix=f"bench-{self.name}-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            list(cmd), stdout=self._log, stderr=subprocess.STDOUT, env=dict(env), cwd=ROOT
        )
        self._wait(ready)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def _wait(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Imaged(Server):
    name = "imaged"

    def __init__(
        self,
        concurrency: int,
        allocator: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        port = free_port()
        cmd = [sys.executable, "-m", "imaged", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--concurrency", str(concurrency), *args]
        full_env = _clean_env({**allocator_env(allocator), **(env or {})})
        self.allocator = allocator
        super().__init__(cmd, full_env, port, "/healthz")


THUMBOR_CONF = """\
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
ALLOW_UNSAFE_URL = True
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
ENGINE = 'thumbor.engines.pil'
RESPECT_ORIENTATION = True
ENGINE_THREADPOOL_SIZE = {threads}
"""


def thumbor_python() -> Path:
    return THUMBOR_VENV / "bin" / "python"


def ensure_thumbor(install: bool) -> str | None:
    """Create bench/.venv-thumbor with the pinned thumbor; None when ready, else why not."""
    marker = THUMBOR_VENV / ".installed"
    wanted = THUMBOR_REQUIREMENTS.read_text()
    if marker.is_file() and marker.read_text() == wanted and thumbor_python().exists():
        return None
    if not install:
        return "bench/.venv-thumbor missing (run without --no-install to create it)"
    print("creating bench/.venv-thumbor (thumbor from PyPI)…", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(THUMBOR_VENV)],
        [str(thumbor_python()), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(thumbor_python()), "-m", "pip", "install", "--quiet", "-r", str(THUMBOR_REQUIREMENTS)],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            return f"thumbor install failed: {' '.join(step)}\n{proc.stderr[-2000:]}"
    marker.write_text(wanted)
    return None


class Thumbor(Server):
    name = "thumbor"

    def __init__(self, threads: int, allocator: str) -> None:
        port = free_port()
        self._conf_dir = tempfile.TemporaryDirectory(prefix="bench-thumbor-")
        conf = Path(self._conf_dir.name) / "thumbor.conf"
        conf.write_text(THUMBOR_CONF.format(root=str(CORPUS), threads=threads))
        cmd = [str(THUMBOR_VENV / "bin" / "thumbor"), "-i", "127.0.0.1", "-p", str(port)]
        cmd += ["-c", str(conf), "-l", "warning"]
        self.allocator = allocator
        super().__init__(cmd, _clean_env(allocator_env(allocator)), port, "/healthcheck")

    def stop(self) -> None:
        super().stop()
        self._conf_dir.cleanup()
