"""Storage back-ends for pipeline outputs (one module per back-end)."""

from __future__ import annotations

from collections.abc import Mapping

from imaged.pipeline.storage.base import Storage


def open_storage(output_dir: str | None, environ: Mapping[str, str]) -> Storage:
    """The local-directory back-end with `--output-dir`, else S3 configured by `environ`
    (the server's and every batch worker's choice). Each back-end is imported only when
    chosen: S3 pulls in aiobotocore."""
    if output_dir:
        from imaged.pipeline.storage.local import LocalStorage

        return LocalStorage(output_dir)
    from imaged.pipeline.storage.s3 import S3Storage

    return S3Storage.from_environ(environ)
