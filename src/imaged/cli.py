"""argv + environment → validated `Settings`; FATAL lines and exit codes (config.md).

What to parse, in which order to validate and what each check says all come from the
settings registry; this module only knows argparse, precedence and the process exit."""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from imaged import __version__
from imaged.errors import ConfigError
from imaged.log import Logger, fatal
from imaged.settings import BY_NAME, REGISTRY, VALIDATION_ORDER, Settings


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as exceptions (exit 1, not argparse's 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class Subcommand:
    """`imaged <name> …`: `module` (imported only when the command runs) provides
    `add_arguments(parser)` and `run(args, environ) -> int` (the exit status)."""

    module: str
    summary: str
    usage_status: int = 1  # the exit status of a usage error


# Add a command here; its module never imports this one.
SUBCOMMANDS: dict[str, Subcommand] = {
    "sign": Subcommand("imaged.sign_command", "print a signed URL path and query"),
    "batch": Subcommand(
        "imaged.batch.command", "run a pipeline config over every image of a directory or bucket", 2
    ),
}


def run_subcommand(name: str, argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Parse the command's arguments (usage errors exit 1 like the server's, unless the
    command says otherwise) and run it."""
    command = SUBCOMMANDS[name]
    module = importlib.import_module(command.module)
    parser = _Parser(prog=f"imaged {name}", description=command.summary, allow_abbrev=False)
    module.add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"imaged {name}: error: {exc}\nTry 'imaged {name} --help'.", file=sys.stderr)
        return command.usage_status
    return int(module.run(args, environ))


def build_parser() -> argparse.ArgumentParser:
    commands = ", ".join(f"imaged {name} ({c.summary})" for name, c in SUBCOMMANDS.items())
    parser = _Parser(
        prog="imaged",
        description="HTTP image processing server on libvips.",
        epilog="Precedence: flag > environment variable > default. "
        "Boolean flags take an optional value: false/0 turn them off, anything else on. "
        f"Commands: {commands}; each has its own --help.",
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


class _Resolution:
    """The typed values, read from the raw texts on first use (a setting's check may read
    another setting before that setting's own turn)."""

    def __init__(self, raw: Mapping[str, str | None], environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.values: dict[str, Any] = {}
        self._raw = raw

    def value(self, name: str) -> Any:
        if name not in self.values:
            self.values[name] = BY_NAME[name].read(self._raw[name])
        return self.values[name]


def resolve(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Parse, then validate in the registry's order (config.md's); raises UsageError or the
    ConfigError of the first failing check."""
    resolution = _Resolution(_raw_values(argv, environ), environ)
    for entry in VALIDATION_ORDER:
        value = resolution.value(entry.name)
        if entry.check is not None:
            entry.check(value, resolution)
    return Settings(**resolution.values)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in SUBCOMMANDS:
        return run_subcommand(args[0], args[1:], os.environ)
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
