"""docker/entrypoint.sh run directly (no Docker): arguments, HOST default, mimalloc preload.

A stub program stands in for `imaged` where only the hand-over is under test; the last
tests start the real server through the script.
"""

from __future__ import annotations

import ctypes.util
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serverproc import ROOT, free_port
from tests.waiting import wait_until

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
DOCKERFILE = ROOT / "Dockerfile"

STUB = """\
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "pid": os.getpid(),
                  "HOST": os.environ.get("HOST"), "LD_PRELOAD": os.environ.get("LD_PRELOAD")}))
"""


def _real_library() -> Path:
    """A harmless, really loadable shared library to stand in for libmimalloc."""
    name = ctypes.util.find_library("m")
    assert name is not None
    for directory in ("/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib"):
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate.resolve()
    raise AssertionError("libm not found")


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    script = tmp_path / "fake-imaged"
    script.write_text(f"#!{sys.executable}\n{STUB}")
    script.chmod(0o755)
    return script


@pytest.fixture
def fake_mimalloc(tmp_path: Path) -> Path:
    libdir = tmp_path / "lib" / "x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    lib = libdir / "libmimalloc.so.2"
    shutil.copy(_real_library(), lib)
    return lib


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "LD_PRELOAD")}
    env.update(extra)
    return env


def run_entrypoint(args: list[str], env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run(
        ["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert "cannot be preloaded" not in proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_arguments_are_passed_through_verbatim(stub: Path, tmp_path: Path) -> None:
    args = ["--port", "3000", "--log-format", "json", "two words", "$HOME", "*", ""]
    out = run_entrypoint(args, _env(IMAGED_BIN=str(stub), IMAGED_PRELOAD_SEARCH=""))
    assert out["argv"] == args


def test_host_defaults_to_all_interfaces(stub: Path) -> None:
    out = run_entrypoint([], _env(IMAGED_BIN=str(stub)))
    assert out["HOST"] == "0.0.0.0"


def test_host_set_by_the_user_is_kept(stub: Path) -> None:
    assert run_entrypoint([], _env(IMAGED_BIN=str(stub), HOST="127.0.0.1"))["HOST"] == ("127.0.0.1")
    # Explicitly empty: imaged's own default (localhost) applies.
    assert run_entrypoint([], _env(IMAGED_BIN=str(stub), HOST=""))["HOST"] == ""


def test_mimalloc_is_preloaded_when_present(stub: Path, fake_mimalloc: Path) -> None:
    search = f"{fake_mimalloc.parents[1]}/*-linux-gnu/libmimalloc.so.*"
    out = run_entrypoint([], _env(IMAGED_BIN=str(stub), IMAGED_PRELOAD_SEARCH=search))
    assert out["LD_PRELOAD"] == str(fake_mimalloc)


def test_no_preload_when_mimalloc_is_absent(stub: Path, tmp_path: Path) -> None:
    search = f"{tmp_path}/nothing/libmimalloc.so.*"
    out = run_entrypoint([], _env(IMAGED_BIN=str(stub), IMAGED_PRELOAD_SEARCH=search))
    assert out["LD_PRELOAD"] is None


def test_user_preload_wins(stub: Path, fake_mimalloc: Path) -> None:
    search = str(fake_mimalloc)
    base = _env(IMAGED_BIN=str(stub), IMAGED_PRELOAD_SEARCH=search)
    chosen = str(_real_library())
    assert run_entrypoint([], {**base, "LD_PRELOAD": chosen})["LD_PRELOAD"] == chosen
    # LD_PRELOAD= (empty) is how a user asks for glibc malloc.
    assert run_entrypoint([], {**base, "LD_PRELOAD": ""})["LD_PRELOAD"] == ""


def test_default_search_matches_debian_mimalloc_name() -> None:
    """The default glob covers the file name Debian's libmimalloc package installs
    (libmimalloc.so.2 under the multiarch directory), like the Makefile's `make run`."""
    text = ENTRYPOINT.read_text()
    default = re.search(r"IMAGED_PRELOAD_SEARCH:-([^}]*)\}", text)
    assert default is not None
    patterns = default.group(1).split()
    for path in ("/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "/usr/lib/libmimalloc.so.2"):
        assert any(fnmatch.fnmatch(path, p) for p in patterns), path
    makefile = (ROOT / "Makefile").read_text()
    assert "/usr/lib/*-linux-gnu/libmimalloc.so.*" in makefile


@pytest.fixture
def entrypoint_server(fake_mimalloc: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """The real imaged started through the script, on loopback (args override HOST)."""
    port = free_port()
    system = sorted(Path("/usr/lib").glob("*-linux-gnu/libmimalloc.so.*"))
    lib = system[0] if system else fake_mimalloc
    env = _env(IMAGED_PRELOAD_SEARCH=str(lib))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "--host", "127.0.0.1", "--port", str(port), "-c", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        yield proc, port, lib
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_healthy(port: int) -> httpx.Response:
    def answer() -> httpx.Response | None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        except httpx.TransportError:
            return None

    return wait_until(answer, f"an answer from /healthz on port {port}")


def test_real_server_through_entrypoint(
    entrypoint_server: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, lib = entrypoint_server
    assert _wait_healthy(port).status_code == 200
    # `exec`: the script's pid is now imaged itself, with the allocator mapped in.
    maps = Path(f"/proc/{proc.pid}/maps").read_text()
    assert str(lib.resolve()) in maps or str(lib) in maps
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    assert any(part.endswith(b"imaged") for part in cmdline)
    # Signals reach the server directly: a clean, logged shutdown.
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "url=http://127.0.0.1:" in output
    assert "Shutting down" in output


def test_dockerfile_runtime_contract() -> None:
    """Slim Debian runtime, mimalloc installed, HOST=0.0.0.0, non-root, the entrypoint."""
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert stages and all(
        re.match(r"(python:3\.\d+-slim-bookworm|debian:bookworm-slim)", s) for s in stages
    )
    runtime = text[text.rindex("\nFROM ") :]
    assert "libmimalloc" in runtime
    assert re.search(r"^ENV [^\n]*(\\\n[^\n]*)*HOST=0\.0\.0\.0", runtime, flags=re.M)
    user = re.findall(r"^USER (\S+)", runtime, flags=re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/imaged-entrypoint"\]', runtime, re.M)
    assert "COPY docker/entrypoint.sh /usr/local/bin/imaged-entrypoint" in runtime
    assert os.access(ENTRYPOINT, os.X_OK)
