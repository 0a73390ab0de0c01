"""One registry of every setting: flag, environment variable, default, parser and help.

The CLI, `--help`, `docs/configuration.md` and the docs-coverage test all read `REGISTRY`,
so a setting exists in exactly one place.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imaged.errors import ConfigError

_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_int(raw: str, message: str, minimum: int = 1, maximum: int | None = None) -> int:
    """Strict decimal integer: `8000abc`, `3.7`, `1e3` and `""` are configuration errors."""
    text = raw.strip(" \t\n\v\f\r")
    if not _INTEGER.fullmatch(text):
        raise ConfigError(message, value=raw)
    value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(message, value=raw)
    return value


def parse_bool(raw: str) -> bool:
    """`false`/`0` (any case) → False; everything else, even empty, → True (spec QUIRK)."""
    return raw.strip().lower() not in ("false", "0")


@dataclass(frozen=True)
class Setting:
    """One option. `kind` is `int`, `bool`, `str` or `path`; `parse` turns the raw text into
    the typed value (raising `ConfigError`); settings are validated in registry order."""

    name: str
    flags: tuple[str, ...]
    env: str | None
    default: Any
    kind: str
    metavar: str
    help: str
    parse: Callable[[str], Any] | None = None
    default_doc: str = ""

    @property
    def default_text(self) -> str:
        return self.default_doc or ("none" if self.default is None else str(self.default))


def _int(message: str, minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    return lambda raw: parse_int(raw, message, minimum, maximum)


def _choice(choices: tuple[str, ...], message: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ConfigError(message, value=raw)
        return raw

    return parse


REGISTRY: tuple[Setting, ...] = (
    Setting(
        "port",
        ("-p", "--port"),
        "PORT",
        8000,
        "int",
        "<number>",
        "TCP port to listen on (1-65535)",
        _int("Invalid port", 1, 65535),
    ),
    Setting(
        "host",
        ("-H", "--host"),
        "HOST",
        None,
        "str",
        "<address>",
        "bind address; default localhost (loopback only, IPv4 and IPv6)",
        default_doc="localhost",
    ),
    Setting(
        "unix",
        ("-u", "--unix"),
        "UNIX_SOCKET",
        None,
        "path",
        "<path>",
        "listen on this unix socket instead of host/port",
    ),
    Setting(
        "concurrency",
        ("-c", "--concurrency"),
        "CONCURRENCY",
        None,
        "int",
        "<number>",
        "concurrent image operations (permits)",
        _int("Invalid concurrency"),
        default_doc="number of logical CPUs",
    ),
    Setting(
        "body_limit",
        ("-b", "--body-limit"),
        "BODY_LIMIT",
        16777216,
        "int",
        "<bytes>",
        "maximum request body (and fetched body) in bytes",
        _int("Invalid body limit"),
    ),
    Setting(
        "pixel_limit",
        ("-x", "--pixel-limit"),
        "PIXEL_LIMIT",
        100000000,
        "int",
        "<pixels>",
        "maximum width x height of an input image (first page)",
        _int("Invalid pixel limit"),
    ),
    Setting(
        "dimension_limit",
        ("-d", "--dimension-limit"),
        "DIMENSION_LIMIT",
        16384,
        "int",
        "<pixels>",
        "maximum requested width or height",
        _int("Invalid dimension limit"),
    ),
    Setting(
        "enable_fetch",
        ("-f", "--enable-fetch"),
        "ENABLE_FETCH",
        False,
        "bool",
        "[bool]",
        "enable GET /transform and GET /metadata (fetch by ?url=)",
    ),
    Setting(
        "allowed_hosts",
        ("-a", "--allowed-hosts"),
        "ALLOWED_HOSTS",
        None,
        "str",
        "<regex>",
        "Python regex searched in the host name of every fetched URL; empty = any host",
    ),
    Setting(
        "disable_ssrf_protection",
        ("--disable-ssrf-protection",),
        "DISABLE_SSRF_PROTECTION",
        False,
        "bool",
        "[bool]",
        "allow fetching from private, loopback and reserved addresses",
    ),
    Setting(
        "enable_pipeline",
        ("-P", "--enable-pipeline"),
        "ENABLE_PIPELINE",
        False,
        "bool",
        "[bool]",
        "enable PUT /pipeline",
    ),
    Setting(
        "max_pipeline_tasks",
        ("--max-pipeline-tasks",),
        "MAX_PIPELINE_TASKS",
        10,
        "int",
        "<number>",
        "maximum tasks per pipeline request",
        _int("Invalid max-pipeline-tasks"),
    ),
    Setting(
        "output_dir",
        ("--output-dir",),
        "OUTPUT_DIR",
        None,
        "path",
        "<dir>",
        "store pipeline outputs under this directory (<dir>/<bucket>/<key>) instead of S3",
    ),
    Setting(
        "log_format",
        ("-l", "--log-format"),
        "LOG_FORMAT",
        "text",
        "str",
        "<format>",
        "log format: text or json",
        _choice(("json", "text"), "Invalid log format (must be 'json' or 'text')"),
    ),
    Setting(
        "log_level",
        ("-L", "--log-level"),
        "LOG_LEVEL",
        "info",
        "str",
        "<level>",
        "log level: debug, info, warn or error",
        _choice(
            ("debug", "info", "warn", "error"),
            "Invalid log level (must be 'debug', 'info', 'warn', or 'error')",
        ),
    ),
    Setting(
        "tls_cert",
        ("--tls-cert",),
        "TLS_CERT",
        None,
        "path",
        "<path>",
        "PEM certificate (chain); with --tls-key enables TLS",
    ),
    Setting("tls_key", ("--tls-key",), "TLS_KEY", None, "path", "<path>", "PEM private key"),
    Setting(
        "mtls_ca",
        ("--mtls-ca",),
        "MTLS_CA",
        None,
        "path",
        "<path>",
        "PEM CA: require client certificates signed by it (needs TLS)",
    ),
    Setting(
        "queue_limit",
        ("--queue-limit",),
        "QUEUE_LIMIT",
        None,
        "int",
        "<number>",
        "image requests that may wait for a permit before 503",
        _int("Invalid queue limit"),
        default_doc="max(64, 4 x concurrency)",
    ),
    Setting(
        "operation_timeout",
        ("--operation-timeout",),
        "OPERATION_TIMEOUT",
        60,
        "int",
        "<seconds>",
        "time limit for one image operation; libvips is stopped after it",
        _int("Invalid operation timeout"),
    ),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in REGISTRY}


@dataclass(frozen=True)
class Settings:
    """The validated configuration, created once by the CLI and passed down."""

    port: int = 8000
    host: str | None = None
    unix: str | None = None
    concurrency: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    body_limit: int = 16777216
    pixel_limit: int = 100000000
    dimension_limit: int = 16384
    enable_fetch: bool = False
    allowed_hosts: str | None = None
    disable_ssrf_protection: bool = False
    enable_pipeline: bool = False
    max_pipeline_tasks: int = 10
    output_dir: str | None = None
    log_format: str = "text"
    log_level: str = "info"
    tls_cert: str | None = None
    tls_key: str | None = None
    mtls_ca: str | None = None
    queue_limit: int | None = None
    operation_timeout: int = 60

    @property
    def effective_queue_limit(self) -> int:
        return self.queue_limit or max(64, 4 * self.concurrency)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None
