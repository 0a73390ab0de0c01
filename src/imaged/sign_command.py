"""`imaged sign [--key HEX] [--expires-in SECONDS | --expires UNIX] PATH_AND_QUERY`
(access.md, "The `sign` command"): prints the signed path and query, one line.

The key is `--key`, else the first of `SIGNING_KEYS` (the one clients sign with while
older keys still verify). Errors are one line on stderr and exit status 1; the key itself
never appears in them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping

from imaged.errors import ConfigError
from imaged.settings import BY_NAME, parse_int
from imaged.signing import INVALID_KEY, parse_expires, sign

NO_KEY = "no signing key: pass --key or set SIGNING_KEYS"
INVALID_EXPIRES_IN = "Invalid expires-in"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", metavar="HEX", help="hex key (default: first of SIGNING_KEYS)")
    expiry = parser.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires-in", metavar="SECONDS", help="append expires=<now + SECONDS> (signed)"
    )
    expiry.add_argument("--expires", metavar="UNIX", help="append expires=UNIX (signed)")
    parser.add_argument(
        "path_and_query",
        metavar="PATH_AND_QUERY",
        help="the path and query to sign, values already percent-encoded, e.g. "
        "'/transform?url=https%%3A%%2F%%2Fa.example%%2Fp.jpg&width=300'",
    )


def _key(args: argparse.Namespace, environ: Mapping[str, str]) -> bytes:
    """`--key` (exactly one key), else the first of `SIGNING_KEYS`, read by that setting's
    own parser (so the same keys are valid here and in the server)."""
    keys = BY_NAME["signing_keys"]
    if args.key is not None:
        try:
            given: tuple[bytes, ...] | None = keys.read(args.key)
        except ConfigError:
            given = None
        if not given or len(given) != 1:
            raise ConfigError(INVALID_KEY)
        return given[0]
    configured: tuple[bytes, ...] | None = keys.read(environ.get("SIGNING_KEYS"))
    if not configured:  # unset, or present but empty: none configured
        raise ConfigError(NO_KEY)
    return configured[0]


def _expires(args: argparse.Namespace) -> int | None:
    if args.expires_in is not None:
        return int(time.time()) + parse_int(args.expires_in, INVALID_EXPIRES_IN)
    if args.expires is not None:
        return parse_expires(args.expires)
    return None


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        signed = sign(args.path_and_query, _key(args, environ), _expires(args))
    except ConfigError as exc:
        fields = "".join(f" {name}={value}" for name, value in exc.fields.items())
        print(exc.message + fields, file=sys.stderr)
        return 1
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(signed)
    return 0
