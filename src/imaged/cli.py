"""argv + environment → validated `Settings`; FATAL messages and exit codes (config.md)."""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from imaged import __version__
from imaged.errors import ConfigError
from imaged.fetch.hosts import compile_allowed_hosts
from imaged.log import Logger, fatal
from imaged.settings import BY_NAME, REGISTRY, Settings

# The checks of config.md in their order; the extensions follow, in registry order.
_NUMBERS = ("port", "concurrency", "body_limit", "pixel_limit", "dimension_limit")
_EXTENSIONS = tuple(s.name for s in REGISTRY if s.extension and s.kind == "int")
_OPTIONAL_TEXT = ("host", "unix", "output_dir", "pipeline_buckets")
_PIPELINE_CREDENTIALS = (
    "Pipeline endpoint requires AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables"
)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as exceptions (exit 1, not argparse's 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="imaged",
        description="HTTP image processing server on libvips.",
        epilog="Precedence: flag > environment variable > default. "
        "Boolean flags take an optional value: false/0 turn them off, anything else on.",
        allow_abbrev=False,
        add_help=False,
    )
    for s in REGISTRY:
        rule = f"; {s.rule}" if s.kind in ("int", "choice") else ""
        help_text = f"{s.help}{rule} (default: {s.default_text}) [env {s.env}]"
        help_text = help_text.replace("`", "").replace("%", "%%")
        if s.kind == "bool":
            parser.add_argument(
                *s.flags, dest=s.name, nargs="?", const="true", default=None, metavar="bool",
                help=help_text,
            )  # fmt: skip
        else:
            parser.add_argument(
                *s.flags, dest=s.name, default=None, metavar=s.metavar.strip("<>"), help=help_text
            )
    parser.add_argument("-h", "--help", action="help", help="print this help and exit")
    parser.add_argument(
        "-V", "--version", action="version", version=__version__, help="print the version (0.2.3)"
    )
    return parser


def _bool_flags_before_options(argv: Sequence[str]) -> list[str]:
    """A boolean flag takes the next argument as its value only if it does not start with
    `-`; argparse would also take a negative number (`-f -1`), so make that explicit."""
    bool_flags = {f for s in REGISTRY if s.kind == "bool" for f in s.flags}
    args = list(argv)
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg in bool_flags and following.startswith("-"):
            arg = f"{arg}=true" if arg.startswith("--") else f"{arg}true"
        out.append(arg)
    return out


def _raw_values(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """Flag beats environment (present-but-empty counts as set) beats default (None)."""
    namespace = build_parser().parse_args(_bool_flags_before_options(argv))
    raw: dict[str, str | None] = {}
    for s in REGISTRY:
        value = getattr(namespace, s.name)
        if value is None and s.env in environ:
            value = environ[s.env]
        raw[s.name] = value
    return raw


def _check_file(path: str, message: str) -> None:
    if not os.path.isfile(path):
        raise ConfigError(message, path=path)


def resolve(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Parse and validate in the order of config.md; raises UsageError or ConfigError."""
    raw = _raw_values(argv, environ)
    values: dict[str, Any] = {}

    def typed(name: str) -> None:
        text = raw[name]
        if text is not None:
            values[name] = BY_NAME[name].parse(text)

    for name in _NUMBERS:  # 1-5
        typed(name)
    if raw["allowed_hosts"]:  # 6; empty = no allow-list
        compile_allowed_hosts(raw["allowed_hosts"])
        values["allowed_hosts"] = raw["allowed_hosts"]
    typed("log_format")  # 7
    typed("log_level")  # 8

    cert, key, ca = raw["tls_cert"] or None, raw["tls_key"] or None, raw["mtls_ca"] or None
    if (cert is None) != (key is None):  # 9
        raise ConfigError("Both --tls-cert and --tls-key must be provided for TLS")
    if cert is not None and key is not None:
        _check_file(cert, "TLS certificate file not found")
        _check_file(key, "TLS key file not found")
    if ca is not None:  # 10
        _check_file(ca, "mTLS CA certificate file not found")
        if cert is None:
            raise ConfigError("--mtls-ca requires TLS to be enabled (--tls-cert and --tls-key)")
    values.update(tls_cert=cert, tls_key=key, mtls_ca=ca)

    typed("max_pipeline_tasks")  # 11
    for name in ("enable_fetch", "disable_ssrf_protection", "enable_pipeline"):
        typed(name)
    for name in _OPTIONAL_TEXT:
        if raw[name]:
            values[name] = raw[name]
    has_credentials = bool(
        environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY")
    )
    if values.get("enable_pipeline") and not values.get("output_dir") and not has_credentials:
        raise ConfigError(_PIPELINE_CREDENTIALS)  # 12

    for name in _EXTENSIONS:  # 13: settings the original did not have
        typed(name)
    return Settings(**values)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        settings = resolve(args, os.environ)
    except UsageError as exc:
        print(f"imaged: error: {exc}\nTry 'imaged --help' for more information.", file=sys.stderr)
        return 1
    except ConfigError as exc:
        fatal(exc.message, **exc.fields)
        return 1
    from imaged.server.sockets import StartupError, preflight

    try:
        preflight(settings)  # before the heavy imports of the server
    except StartupError as exc:
        Logger(settings.log_format, settings.log_level).log("fatal", exc.message, **exc.fields)
        return 1
    except OSError:
        pass  # reported with context when the server binds
    from imaged.server.listen import serve

    # A crash inside a native library (libvips and its decoders) then leaves the Python
    # stacks of every thread on stderr, i.e. which request's operation was running.
    faulthandler.enable()
    return serve(settings)
