"""Start the real imaged server as a subprocess.

`Proc` runs `python -m imaged` with exactly the given arguments and a clean environment (for
the tests of defaults, precedence and unix sockets); `ServerProcess` adds a free loopback
`--host/--port` and an httpx client, which is what most tests want.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from imaged.settings import REGISTRY
from tests.waiting import DEADLINE, wait_until

ROOT = Path(__file__).resolve().parents[1]
# `shared/` sits beside the checkout; a git worktree nested deeper finds it further up.
CORPUS = next(
    (p / "shared" / "corpus" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()),
    ROOT.parent / "shared" / "corpus",
)
_OTHER_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "VIPS_CONCURRENCY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process environment without any imaged setting, plus `extra`."""
    names = {s.env for s in REGISTRY} | set(_OTHER_ENV)
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(extra or {})
    return env


def run_cli(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """`python -m imaged ARGS` that is expected to exit by itself (config errors, --help)."""
    return subprocess.run(
        [sys.executable, "-m", "imaged", *args],
        capture_output=True,
        text=True,
        env=clean_env(env),
        cwd=ROOT,
        timeout=timeout,
    )


class Proc:
    """`python -m imaged ARGS` with exactly these args and a clean environment."""

    def __init__(
        self, args: Sequence[str] = (), env: Mapping[str, str] | None = None, wait: bool = True
    ) -> None:
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the server)
            prefix="imaged-", suffix=".log", delete=False
        )
        self._final: str | None = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imaged", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=clean_env(env),
            cwd=ROOT,
        )
        if wait:
            self.wait_ready()

    def log(self) -> str:
        if self._final is not None:
            return self._final
        return Path(self._log.name).read_text(errors="replace")

    def lines(self) -> list[str]:
        return self.log().splitlines()

    def wait_ready(self, timeout: float = DEADLINE) -> None:
        self.wait_log("server listening", timeout)

    def wait_log(self, text: str, timeout: float = DEADLINE) -> None:
        """Until `text` is in the log; fails at once if the server exits without it."""

        def logged() -> bool:
            if text in self.log():
                return True
            if self.proc.poll() is None:
                return False
            if text in self.log():  # written just before exiting
                return True
            raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")

        wait_until(logged, lambda: f"{text!r} in the log:\n{self.log()}", timeout)

    def send(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._final = self.log()  # still readable after the `with` block
        os.unlink(self._log.name)


class ServerProcess(Proc):
    """The server on a free loopback port; `url` is its base URL."""

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
        self.url = f"{scheme}://{host}:{self.port}"
        super().__init__(["--host", host, "--port", str(self.port), *args], env, wait=wait)

    def client(self, **kwargs: object) -> httpx.Client:
        kwargs.setdefault("timeout", 60.0)
        return httpx.Client(base_url=self.url, **kwargs)  # type: ignore[arg-type]
