"""Where the sources run: local worker processes (the default) or a Ray cluster.

Both take one source key at a time and hand back an asyncio future of its manifest record;
the driver keeps at most `capacity` of them in flight (about twice the parallelism, so no
worker waits for the driver while memory stays bounded for any number of sources).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from imaged.batch.worker import BatchJob, init_process, process_key, process_source

RAY_MISSING = "--ray needs the ray package: pip install 'imaged[ray]'"


class Pool(Protocol):
    capacity: int

    def submit(self, key: str) -> asyncio.Future[dict[str, Any]]: ...

    def restart(self) -> None:
        """After a worker process died: a fresh set of workers."""

    def close(self, wait: bool) -> None:
        """`wait`: let running sources finish; else stop the workers at once."""


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    # TODO(resources): use imaged.resources' usable CPUs (affinity and cgroup quota) once it lands.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LocalPool:
    """`workers` spawned processes (never forked: the driver's threads and libvips state
    stay out of them), each one source at a time."""

    def __init__(self, job: BatchJob, workers: int) -> None:
        self.job = job
        self.workers = workers
        self.capacity = 2 * workers
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_process,
            initargs=(self.job,),
        )

    def submit(self, key: str) -> asyncio.Future[dict[str, Any]]:
        return asyncio.wrap_future(self._executor.submit(process_key, key))

    def restart(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._start()

    def close(self, wait: bool) -> None:
        if not wait:
            for process in list(self._executor._processes.values()):
                process.kill()
        self._executor.shutdown(wait=wait, cancel_futures=True)


class RayPool:
    """One Ray task per source (one CPU each); the workers read and write storage
    themselves, so only keys and manifest records pass through the driver."""

    def __init__(self, job: BatchJob, address: str) -> None:
        import ray as ray_module

        ray: Any = ray_module
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            if address == "local":
                ray.init(address="local", include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        self.capacity = 2 * cpus
        self._job = ray.put(job)
        self._task = ray.remote(num_cpus=1)(process_source)

    def submit(self, key: str) -> asyncio.Future[dict[str, Any]]:
        ref = self._task.remote(self._job, key)
        return asyncio.wrap_future(ref.future())

    def restart(self) -> None:
        return None  # Ray retries a task whose worker died itself

    def close(self, wait: bool) -> None:
        if self._owns:
            self._ray.shutdown()


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True
