"""The `--allowed-hosts` pattern: the startup ReDoS heuristic and the per-hop match.

The pattern is Python `re` syntax (the original used JavaScript's). It is refused at startup
by the spec's backtracking heuristic and when Python cannot compile it. Matching then runs on
RE2, a linear-time engine, whenever RE2 accepts the pattern with the same meaning, so a
pattern the heuristic misses still cannot backtrack catastrophically; patterns that need
Python-only features (lookaround, backreferences, `\\Z`, verbose mode, ...) keep Python's
backtracking engine.
"""

from __future__ import annotations

import re
from typing import Protocol

import re2

from imaged.errors import ConfigError

_BACKTRACKING = (
    re.compile(r"\([^)]*(?:[+*]|\{\d*,\d*\})\)[+*?]|\([^)]*(?:[+*]|\{\d*,\d*\})\)\{"),
    re.compile(r"\)[+*?]\s*[^)]*[+*]"),
)

# Constructs RE2 accepts but reads differently from Python: `x{,n}` (RE2: the literal text)
# and `[[:alpha:]]` (Python: a plain set). Patterns containing them stay on Python's engine.
_RE2_DIVERGES = re.compile(r"\{,|\[:")


class _Searcher(Protocol):
    def search(self, text: str) -> object: ...


def _linear(pattern: str) -> _Searcher | None:
    if _RE2_DIVERGES.search(pattern):
        return None
    options = re2.Options()
    options.log_errors = False
    try:
        compiled: _Searcher = re2.compile(pattern, options)
    except Exception:  # re2 raises its own error type for unsupported syntax
        return None
    return compiled


class AllowList:
    """A validated `--allowed-hosts` pattern, searched (unanchored, no flags) in a host."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        python = re.compile(pattern)
        linear = _linear(pattern)
        self.linear_time = linear is not None
        self._searcher: _Searcher = linear if linear is not None else python

    def allows(self, hostname: str) -> bool:
        return self._searcher.search(hostname) is not None


def compile_allowed_hosts(pattern: str | None) -> AllowList | None:
    """None or empty → no allow-list. Raises ConfigError with the spec's messages."""
    if not pattern:
        return None
    if any(p.search(pattern) for p in _BACKTRACKING):
        raise ConfigError(
            "Invalid allowed-hosts regex: pattern may cause catastrophic backtracking",
            value=pattern,
        )
    try:
        return AllowList(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ConfigError("Invalid allowed-hosts regex", value=pattern) from exc


def host_allowed(allowed: AllowList | None, hostname: str) -> bool:
    """Searched in the canonical host name without the port (Compatibility policy), e.g.
    `127.0.0.1`, `example.com`, `[::1]`."""
    return allowed is None or allowed.allows(hostname)
