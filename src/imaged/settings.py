"""One registry of every setting: flag, environment variable, default, validation and help.

The CLI, `--help`, `docs/configuration.md` (`python -m imaged.settings --markdown`) and the
docs-coverage test all read `REGISTRY`, so a setting exists in exactly one place.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imaged.errors import ConfigError

_INTEGER = re.compile(r"[+-]?[0-9]+")
_WHITESPACE = " \t\n\v\f\r"


def parse_int(raw: str, message: str, minimum: int = 1, maximum: int | None = None) -> int:
    """Strict decimal integer (surrounding whitespace allowed): `8000abc`, `3.7`, `1e3`, `0x10`
    and `""` are configuration errors, never truncated (Compatibility policy)."""
    text = raw.strip(_WHITESPACE)
    # Every valid value has far fewer than 30 digits; longer text is out of range (and would
    # exceed Python's 4300-digit int() limit).
    if not _INTEGER.fullmatch(text) or len(text) > 30:
        raise ConfigError(message, value=raw)
    value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(message, value=raw)
    return value


def parse_bool(raw: str) -> bool:
    """`false`/`0` (any case) → False; everything else, even empty, → True (spec QUIRK)."""
    return raw.lower() not in ("false", "0")


@dataclass(frozen=True)
class Setting:
    """One option. `kind` is `int`, `bool`, `choice`, `regex`, `str` or `path`; `error` is the
    FATAL message of an invalid value."""

    name: str
    flags: tuple[str, ...]
    env: str
    default: Any
    kind: str
    metavar: str
    help: str
    error: str | None = None
    minimum: int = 1
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    default_doc: str = ""
    extension: bool = False  # not in the original system (documented as an addition)

    def parse(self, raw: str) -> Any:
        """The typed value of `raw`, or ConfigError(error, value=raw)."""
        if self.kind == "int":
            assert self.error is not None
            return parse_int(raw, self.error, self.minimum, self.maximum)
        if self.kind == "bool":
            return parse_bool(raw)
        if self.kind == "choice":
            if raw not in self.choices:
                raise ConfigError(self.error or f"Invalid {self.name}", value=raw)
            return raw
        return raw

    @property
    def default_text(self) -> str:
        if self.default_doc:
            return self.default_doc
        if self.default is None:
            return "none"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)

    @property
    def rule(self) -> str:
        """The accepted values, in words (for the docs)."""
        if self.kind == "int":
            upper = f"–{self.maximum}" if self.maximum is not None else " or more"
            return f"decimal integer {self.minimum}{upper}"
        if self.kind == "bool":
            return "boolean: alone = true; `false`/`0` = false; any other value = true"
        if self.kind == "choice":
            return "exactly " + " or ".join(f"`{c}`" for c in self.choices)
        if self.kind == "regex":
            return "Python regular expression; empty = no allow-list"
        if self.kind == "path":
            return "file system path; empty = not set"
        return "text; empty = not set"


def _int(
    name: str,
    flags: tuple[str, ...],
    env: str,
    default: int | None,
    metavar: str,
    help_text: str,
    error: str,
    maximum: int | None = None,
    **extra: Any,
) -> Setting:
    return Setting(name, flags, env, default, "int", metavar, help_text, error, 1, maximum, **extra)


def _bool(name: str, flags: tuple[str, ...], env: str, help_text: str) -> Setting:
    return Setting(name, flags, env, False, "bool", "[bool]", help_text)


REGISTRY: tuple[Setting, ...] = (
    _int("port", ("-p", "--port"), "PORT", 8000, "<number>", "TCP port to listen on",
         "Invalid port", maximum=65535),
    Setting("host", ("-H", "--host"), "HOST", None, "str", "<address>",
            "bind address (`0.0.0.0` or `::` for all interfaces; `::` is dual-stack)",
            default_doc="localhost (127.0.0.1 and ::1)"),
    Setting("unix", ("-u", "--unix"), "UNIX_SOCKET", None, "path", "<path>",
            "listen on this unix socket instead of host/port"),
    _int("concurrency", ("-c", "--concurrency"), "CONCURRENCY", None, "<number>",
         "concurrent image operations (permits of the global limiter)", "Invalid concurrency",
         default_doc="number of logical CPUs"),
    _int("body_limit", ("-b", "--body-limit"), "BODY_LIMIT", 16777216, "<bytes>",
         "maximum request body in bytes (larger bodies get 413)", "Invalid body limit"),
    _int("pixel_limit", ("-x", "--pixel-limit"), "PIXEL_LIMIT", 100000000, "<pixels>",
         "maximum width × height of an input image", "Invalid pixel limit"),
    _int("dimension_limit", ("-d", "--dimension-limit"), "DIMENSION_LIMIT", 16384, "<pixels>",
         "maximum requested output width or height", "Invalid dimension limit"),
    _int("input_side_limit", ("--input-side-limit",), "INPUT_SIDE_LIMIT", 100000, "<pixels>",
         "maximum width or height of an input image: libvips buffers whole scanlines, so "
         "a 10 000 000 × 10 image would need gigabytes to resize",
         "Invalid input side limit", extension=True),
    _bool("enable_fetch", ("-f", "--enable-fetch"), "ENABLE_FETCH",
          "enable GET /transform and GET /metadata (source image fetched from ?url=)"),
    Setting("allowed_hosts", ("-a", "--allowed-hosts"), "ALLOWED_HOSTS", None, "regex",
            "<regex>", "only fetch from host names this pattern is found in (searched, "
            "unanchored, in the host name without the port)",
            error="Invalid allowed-hosts regex"),
    _bool("disable_ssrf_protection", ("--disable-ssrf-protection",), "DISABLE_SSRF_PROTECTION",
          "allow fetching from private, loopback and reserved addresses"),
    _bool("enable_pipeline", ("-P", "--enable-pipeline"), "ENABLE_PIPELINE",
          "enable PUT /pipeline (needs AWS credentials in the environment, or --output-dir)"),
    _int("max_pipeline_tasks", ("--max-pipeline-tasks",), "MAX_PIPELINE_TASKS", 10, "<number>",
         "maximum tasks per pipeline request (validated even if the pipeline is off)",
         "Invalid max-pipeline-tasks"),
    Setting("output_dir", ("--output-dir",), "OUTPUT_DIR", None, "path", "<dir>",
            "store pipeline outputs under <dir>/<bucket>/<key> instead of uploading to S3",
            extension=True),
    Setting("pipeline_buckets", ("--pipeline-buckets",), "PIPELINE_BUCKETS", None, "str",
            "<names>", "comma-separated buckets pipeline tasks may write to; tasks naming "
            "another bucket fail before any work", default_doc="any bucket",
            extension=True),
    _int("max_pipeline_output", ("--max-pipeline-output",), "MAX_PIPELINE_OUTPUT", 134217728,
         "<bytes>", "largest encoded output of one pipeline task", "Invalid max pipeline output",
         extension=True),
    _int("max_pipeline_total_output", ("--max-pipeline-total-output",),
         "MAX_PIPELINE_TOTAL_OUTPUT", 536870912, "<bytes>",
         "total encoded output of one pipeline request", "Invalid max pipeline total output",
         extension=True),
    Setting("log_format", ("-l", "--log-format"), "LOG_FORMAT", "text", "choice", "<format>",
            "log line format", "Invalid log format (must be 'json' or 'text')",
            choices=("json", "text")),
    Setting("log_level", ("-L", "--log-level"), "LOG_LEVEL", "info", "choice", "<level>",
            "lowest level logged",
            "Invalid log level (must be 'debug', 'info', 'warn', or 'error')",
            choices=("debug", "info", "warn", "error")),
    Setting("tls_cert", ("--tls-cert",), "TLS_CERT", None, "path", "<path>",
            "PEM certificate (chain); together with --tls-key enables TLS"),
    Setting("tls_key", ("--tls-key",), "TLS_KEY", None, "path", "<path>",
            "PEM private key of the certificate"),
    Setting("mtls_ca", ("--mtls-ca",), "MTLS_CA", None, "path", "<path>",
            "PEM CA bundle: require a client certificate signed by it (needs TLS)"),
    _int("queue_limit", ("--queue-limit",), "QUEUE_LIMIT", None, "<number>",
         "image requests that may wait for a permit; beyond it they get 503 + Retry-After",
         "Invalid queue limit", default_doc="max(64, 4 × concurrency)", extension=True),
    _int("operation_timeout", ("--operation-timeout",), "OPERATION_TIMEOUT", 60, "<seconds>",
         "time limit of one image operation; libvips is stopped when it is exceeded",
         "Invalid operation timeout", extension=True),
    _int("keepalive_timeout", ("--keepalive-timeout",), "KEEPALIVE_TIMEOUT", 10, "<seconds>",
         "close a kept-alive connection idle for this long", "Invalid keepalive timeout",
         maximum=3600, extension=True),
    _int("header_timeout", ("--header-timeout",), "HEADER_TIMEOUT", 30, "<seconds>",
         "the whole request head must arrive within this time of the connection opening "
         "(or of the previous response); else 408 and close", "Invalid header timeout",
         maximum=60, extension=True),
    _int("body_timeout", ("--body-timeout",), "BODY_TIMEOUT", 60, "<seconds>",
         "the whole request body must arrive within this time after the head; else 408 "
         "and close", "Invalid body timeout", maximum=60, extension=True),
    _int("shutdown_timeout", ("--shutdown-timeout",), "SHUTDOWN_TIMEOUT", 10, "<seconds>",
         "on SIGTERM/SIGINT, wait this long for in-flight requests, then force exit 1",
         "Invalid shutdown timeout", maximum=3600, extension=True),
)  # fmt: skip

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
    input_side_limit: int = 100000
    enable_fetch: bool = False
    allowed_hosts: str | None = None
    disable_ssrf_protection: bool = False
    enable_pipeline: bool = False
    max_pipeline_tasks: int = 10
    output_dir: str | None = None
    pipeline_buckets: str | None = None
    max_pipeline_output: int = 134217728
    max_pipeline_total_output: int = 536870912
    log_format: str = "text"
    log_level: str = "info"
    tls_cert: str | None = None
    tls_key: str | None = None
    mtls_ca: str | None = None
    queue_limit: int | None = None
    operation_timeout: int = 60
    keepalive_timeout: int = 10
    header_timeout: int = 30
    body_timeout: int = 60
    shutdown_timeout: int = 10

    @property
    def effective_queue_limit(self) -> int:
        return self.queue_limit or max(64, 4 * self.concurrency)

    @property
    def allowed_buckets(self) -> frozenset[str] | None:
        if not self.pipeline_buckets:
            return None
        return frozenset(b.strip() for b in self.pipeline_buckets.split(",") if b.strip())

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


def main(argv: Sequence[str]) -> int:
    """`python -m imaged.settings --markdown` prints docs/configuration.md."""
    if list(argv) != ["--markdown"]:
        print("usage: python -m imaged.settings --markdown", file=sys.stderr)
        return 1
    from imaged.settings_doc import render_markdown

    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
