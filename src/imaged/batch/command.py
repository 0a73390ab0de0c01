"""`imaged batch --config FILE --source DIR|s3://bucket/prefix [options]` (batch.md).

Exit status: 0 every source succeeded, 1 any failed, 2 usage and config errors (all
found before any source is listed), 130/143 after SIGINT/SIGTERM. The server's pipeline
settings apply with the same flags, environment variables and defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from typing import Any

from imaged import resources
from imaged.batch.config import BatchConfigError, load_config
from imaged.batch.driver import Driver, RunOptions
from imaged.batch.manifest import Manifest, ManifestError, done_sources
from imaged.batch.pools import RAY_MISSING, LocalPool, Pool, RayPool, ray_available
from imaged.batch.progress import MODES, make_progress
from imaged.batch.sources import S3Source, SourceSpecError, parse_source
from imaged.batch.worker import BatchJob, BatchLimits
from imaged.errors import ConfigError
from imaged.pipeline.storage.s3 import configuration
from imaged.settings import BY_NAME, Settings, parse_int

USAGE_STATUS = 2
DEFAULT_MANIFEST = "imaged-batch.jsonl"
# The server settings a batch uses, under their own flags and variables.
PIPELINE_SETTINGS = (
    "output_dir",
    "max_pipeline_tasks",
    "pipeline_buckets",
    "max_pipeline_output",
    "max_pipeline_total_output",
    "pixel_limit",
    "dimension_limit",
    "input_side_limit",
    "body_limit",
    "max_frames",
    "operation_timeout",
)
S3_CREDENTIALS = (
    "S3 sources and outputs need AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment "
    "variables (or --output-dir for local outputs)"
)
INVALID_WORKERS = "Invalid workers"
INVALID_LIMIT = "Invalid limit"
NO_CONFIG = "cannot read the config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The pipeline settings of the server apply with the same flags, variables and "
        "defaults; --body-limit is the largest source object. Exit status: 0 every source "
        "succeeded, 1 any failed, 2 usage or config error, 130/143 after SIGINT/SIGTERM."
    )
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="pipeline config; - = stdin"
    )
    parser.add_argument(
        "--source", required=True, metavar="SOURCE", help="a directory or s3://bucket/prefix"
    )
    parser.add_argument(
        "--include", action="append", metavar="GLOB",
        help="keep only source keys matching (case-insensitive fnmatch; repeatable; default *)",
    )  # fmt: skip
    parser.add_argument(
        "--manifest", default=DEFAULT_MANIFEST, metavar="FILE",
        help=f"JSONL record of what was done (default: ./{DEFAULT_MANIFEST})",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true", help="skip sources whose latest manifest line succeeded"
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        help="local worker processes (default: usable CPUs, from affinity and cgroup quota)",
    )
    parser.add_argument(
        "--ray", metavar="ADDRESS", help="run on Ray: auto, local or ray://host:port"
    )
    parser.add_argument("--progress", choices=MODES, default="auto", help="default: auto")
    parser.add_argument("--limit", metavar="N", help="stop after N sources")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the sources and output keys only"
    )
    for name in PIPELINE_SETTINGS:
        s = BY_NAME[name]
        help_text = f"{s.help} (default: {s.default_text}) [env {s.env}]"
        parser.add_argument(
            *s.flags, dest=name, metavar=s.metavar.strip("<>"),
            help=help_text.replace("`", "").replace("%", "%%"),
        )  # fmt: skip


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flag beats variable beats default, parsed by the registry's own parsers; the other
    settings keep their defaults."""
    values: dict[str, Any] = {}
    for name in PIPELINE_SETTINGS:
        s = BY_NAME[name]
        raw = getattr(args, name)
        if raw is None and s.env in environ:
            raw = environ[s.env]
        values[name] = s.read(raw)
    return Settings(**values)


def _read_config(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise BatchConfigError(f"{NO_CONFIG} {path}: {exc.strerror}") from exc


def _error(message: str) -> int:
    print(f"imaged batch: {message}", file=sys.stderr)
    return USAGE_STATUS


def worker_count(flag: str | None) -> int:
    """`--workers`, by default the usable CPUs (resources.md: the same default as the
    server's `--concurrency`)."""
    if flag is None:
        return resources.default_concurrency()
    return parse_int(flag, INVALID_WORKERS)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        settings = _settings(args, environ)
        workers = worker_count(args.workers)
        limit = None if args.limit is None else parse_int(args.limit, INVALID_LIMIT)
    except ConfigError as exc:
        fields = "".join(f" {k}={v}" for k, v in exc.fields.items())
        return _error(exc.message + fields)
    try:
        config = load_config(
            _read_config(args.config),
            max_tasks=settings.max_pipeline_tasks,
            dimension_limit=settings.dimension_limit,
        )
    except BatchConfigError as exc:
        return _error(str(exc))
    output_dir = settings.output_dir
    manifest_path = os.path.abspath(args.manifest)
    exclude = {manifest_path}
    if output_dir is not None:
        output_dir = os.path.abspath(output_dir)
        exclude.add(output_dir)
    try:
        source = parse_source(args.source, environ, frozenset(exclude))
    except SourceSpecError as exc:
        return _error(str(exc))
    uses_s3 = isinstance(source, S3Source) or output_dir is None
    if uses_s3 and not (environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY")):
        return _error(S3_CREDENTIALS)
    if args.ray is not None and not ray_available():
        return _error(RAY_MISSING)
    try:
        done = frozenset(done_sources(manifest_path)) if args.resume else frozenset()
        manifest = None if args.dry_run else Manifest(manifest_path)
    except ManifestError as exc:
        return _error(str(exc))
    job = BatchJob(
        config=config,
        source=source,
        output_dir=output_dir,
        environ=configuration(environ),
        limits=BatchLimits.from_settings(settings),
    )

    def make_pool() -> Pool:
        if args.ray is not None:
            return RayPool(job, args.ray)
        return LocalPool(job, workers)

    options = RunOptions(
        includes=tuple(args.include or ("*",)),
        resume_done=done,
        limit=limit,
        dry_run=args.dry_run,
    )
    driver = Driver(source, config, options, make_progress(args.progress))
    try:
        return asyncio.run(driver.run(make_pool, manifest))
    finally:
        if manifest is not None:
            manifest.close()
