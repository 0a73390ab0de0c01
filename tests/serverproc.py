"""Start the real imaged server as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One running `python -m imaged`; `url` is its base URL; `log()` its stdout so far."""

    def __init__(
        self,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        wait: bool = True,
        scheme: str = "http",
    ) -> None:
        self.port = port or free_port()
        self.host = host
        self.scheme = scheme
        self.url = f"{scheme}://{host}:{self.port}"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the server)
            prefix="imaged-", suffix=".log", delete=False
        )
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGED_",))}
        for name in ("PORT", "HOST", "UNIX_SOCKET", "LOG_LEVEL", "LOG_FORMAT"):
            full_env.pop(name, None)
        full_env.update(env or {})
        cmd = [sys.executable, "-m", "imaged", "--host", host, "--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT
        )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30.0, **client_kwargs: object) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            if "server listening" in self.log():
                return
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def client(self, **kwargs: object) -> httpx.Client:
        kwargs.setdefault("timeout", 60.0)
        return httpx.Client(base_url=self.url, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        os.unlink(self._log.name)


def run_cli(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m imaged ARGS` expecting it to exit by itself (config errors, --help)."""
    full_env = {k: v for k, v in os.environ.items()}
    for name in ("PORT", "HOST", "UNIX_SOCKET", "LOG_LEVEL", "LOG_FORMAT"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "imaged", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
    )
