"""argv + environment → validated `Settings`; FATAL messages and exit codes (config.md)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from imaged import __version__
from imaged.errors import ConfigError
from imaged.fetch.hosts import compile_allowed_hosts
from imaged.log import fatal
from imaged.settings import BY_NAME, REGISTRY, Settings, parse_bool


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
        epilog="Precedence: flag > environment variable > default.",
        allow_abbrev=False,
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for s in REGISTRY:
        env = f" [env {s.env}]" if s.env else ""
        help_text = f"{s.help} (default: {s.default_text}){env}"
        if s.kind == "bool":
            parser.add_argument(
                *s.flags,
                dest=s.name,
                nargs="?",
                const="true",
                default=None,
                metavar="bool",
                help=help_text,
            )
        else:
            parser.add_argument(
                *s.flags,
                dest=s.name,
                default=None,
                metavar=s.metavar.strip("<>"),
                help=help_text,
            )
    parser.add_argument("-h", "--help", action="help", help="print this help and exit")
    parser.add_argument(
        "-V", "--version", action="version", version=__version__, help="print the version"
    )
    return parser


def _raw_values(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """Flag beats environment (present-but-empty counts as set) beats default."""
    namespace = build_parser().parse_args(list(argv))
    raw: dict[str, str | None] = {}
    for s in REGISTRY:
        value = getattr(namespace, s.name)
        if value is None and s.env is not None and s.env in environ:
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
        if text is None:
            return
        setting = BY_NAME[name]
        if setting.kind == "bool":
            values[name] = parse_bool(text)
        elif setting.parse is not None:
            values[name] = setting.parse(text)
        else:
            values[name] = text

    for name in ("port", "concurrency", "body_limit", "pixel_limit", "dimension_limit"):
        typed(name)
    compile_allowed_hosts(raw["allowed_hosts"])
    if raw["allowed_hosts"]:
        values["allowed_hosts"] = raw["allowed_hosts"]
    for name in ("log_format", "log_level"):
        typed(name)

    cert, key, ca = raw["tls_cert"] or None, raw["tls_key"] or None, raw["mtls_ca"] or None
    if (cert is None) != (key is None):
        raise ConfigError("Both --tls-cert and --tls-key must be provided for TLS")
    if cert is not None and key is not None:
        _check_file(cert, "TLS certificate file not found")
        _check_file(key, "TLS key file not found")
    if ca is not None:
        _check_file(ca, "mTLS CA certificate file not found")
        if cert is None:
            raise ConfigError("--mtls-ca requires TLS to be enabled (--tls-cert and --tls-key)")
    values.update(tls_cert=cert, tls_key=key, mtls_ca=ca)

    typed("max_pipeline_tasks")
    for name in (
        "host",
        "unix",
        "output_dir",
        "enable_fetch",
        "disable_ssrf_protection",
        "enable_pipeline",
        "queue_limit",
        "operation_timeout",
    ):
        typed(name)
    for name in ("host", "unix", "output_dir"):
        if not values.get(name):
            values.pop(name, None)

    if (
        values.get("enable_pipeline")
        and not values.get("output_dir")
        and not (environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"))
    ):
        raise ConfigError(
            "Pipeline endpoint requires AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "environment variables"
        )
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
    from imaged.server.listen import serve

    return serve(settings)
