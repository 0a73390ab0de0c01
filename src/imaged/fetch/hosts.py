"""The `--allowed-hosts` pattern: the startup ReDoS heuristic and the per-hop match."""

from __future__ import annotations

import re

from imaged.errors import ConfigError

_BACKTRACKING = (
    re.compile(r"\([^)]*(?:[+*]|\{\d*,\d*\})\)[+*?]|\([^)]*(?:[+*]|\{\d*,\d*\})\)\{"),
    re.compile(r"\)[+*?]\s*[^)]*[+*]"),
)


def compile_allowed_hosts(pattern: str | None) -> re.Pattern[str] | None:
    """None or empty → no allow-list. Raises ConfigError with the spec's messages."""
    if not pattern:
        return None
    if any(p.search(pattern) for p in _BACKTRACKING):
        raise ConfigError(
            "Invalid allowed-hosts regex: pattern may cause catastrophic backtracking",
            value=pattern,
        )
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ConfigError("Invalid allowed-hosts regex", value=pattern) from exc


def host_allowed(allowed: re.Pattern[str] | None, hostname: str) -> bool:
    """Searched (unanchored) in the canonical host name without the port."""
    return allowed is None or allowed.search(hostname) is not None
