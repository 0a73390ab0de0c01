"""The in-memory result cache (caching.md, "Result cache"): LRU, bounded by body bytes, TTL.

Entries hold a finished GET response (the rendered body and its output headers) plus the
origin's validators. An entry is served without asking the origin for `ttl` seconds; after
that it stays (until evicted) so its validators can revalidate it: an origin 304 renews it
without downloading or processing again.

Memory: the bodies are counted exactly and never exceed `max_bytes`; each entry adds only a
constant overhead (its key, headers and bookkeeping, a few hundred bytes). An entry larger
than an eighth of the cache is not stored, so one large result cannot flush everything else.
Errors never reach this module: only successful renders are put.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

from imaged.server.output import Rendered

# A result may take at most this fraction of the cache (1/8).
ENTRY_SHARE = 8


@dataclass(frozen=True)
class Entry:
    """A cached response: what was rendered, its ETag and `Last-Modified`, the origin's own
    validators (sent back on revalidation) and when it stops being fresh (clock seconds)."""

    rendered: Rendered
    etag: str
    last_modified: str | None
    origin_etag: str | None
    origin_last_modified: str | None
    fresh_until: float

    @property
    def size(self) -> int:
        return len(self.rendered.body)

    @property
    def revalidatable(self) -> bool:
        return self.origin_etag is not None or self.origin_last_modified is not None


class ResultCache:
    """Least recently used first out, `max_bytes` of bodies at most. `clock` is injectable
    (monotonic seconds) so tests control expiry; use it from the event loop's thread."""

    def __init__(
        self, max_bytes: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Hashable) -> tuple[Entry | None, bool]:
        """(entry, fresh). A lookup counts as a use, fresh or not."""
        entry = self._entries.get(key)
        if entry is None:
            return None, False
        self._entries.move_to_end(key)
        return entry, self._clock() < entry.fresh_until

    def fresh_until(self) -> float:
        return self._clock() + self.ttl

    def storable(self, size: int) -> bool:
        return size * ENTRY_SHARE <= self.max_bytes

    def put(self, key: Hashable, entry: Entry) -> bool:
        """Store (or replace) `entry`, evicting the least recently used until it fits; False
        (and any older entry for `key` dropped) when it is larger than an eighth."""
        self._discard(key)
        if not self.storable(entry.size):
            return False
        while self._entries and self.bytes + entry.size > self.max_bytes:
            self._discard(next(iter(self._entries)))
        self._entries[key] = entry
        self.bytes += entry.size
        return True

    def renew(
        self,
        key: Hashable,
        entry: Entry,
        last_modified: str | None,
        origin: tuple[str | None, str | None],
    ) -> Entry:
        """`entry`, fresh again for `ttl` (after an origin 304, or an unchanged source), with
        its `Last-Modified` and the origin's (ETag, Last-Modified) updated; stored again."""
        origin_etag, origin_last_modified = origin
        renewed = replace(
            entry,
            last_modified=last_modified,
            origin_etag=origin_etag,
            origin_last_modified=origin_last_modified,
            fresh_until=self.fresh_until(),
        )
        self.put(key, renewed)
        return renewed

    def _discard(self, key: Hashable) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size
