"""`imaged batch --workers`: its default is the server's usable-CPU default (resources.md)."""

from __future__ import annotations

import pytest

from imaged import resources
from imaged.batch.command import INVALID_WORKERS, worker_count
from imaged.errors import ConfigError


def test_default_workers_are_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_count(None) == resources.default_concurrency()
    # The default follows the resources reader (e.g. a cgroup quota below the affinity).
    monkeypatch.setattr(resources, "default_concurrency", lambda: 3)
    assert worker_count(None) == 3


def test_explicit_workers() -> None:
    assert worker_count("4") == 4
    for bad in ("0", "-1", "2.5", "x", ""):
        with pytest.raises(ConfigError) as caught:
            worker_count(bad)
        assert caught.value.message == INVALID_WORKERS
