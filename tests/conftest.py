"""Shared fixtures: a default server per session, a factory for custom servers, the corpus."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.serverproc import CORPUS, ServerProcess


@pytest.fixture(scope="session")
def corpus() -> Path:
    assert CORPUS.is_dir(), f"test corpus missing at {CORPUS}"
    return CORPUS


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """The server on its defaults (concurrency 2), shared by read-only tests."""
    with ServerProcess(["--concurrency", "2"]) as proc:
        yield proc


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Factory: `start_server(args, env)` → a running server, stopped after the test."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> ServerProcess:
        proc = ServerProcess(list(args), env, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.__exit__(None)
