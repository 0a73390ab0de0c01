"""The result cache in-process with an injected clock (caching.md, "Result cache")."""

from __future__ import annotations

import random

from imaged.server.output import Rendered
from imaged.server.resultcache import Entry, ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entry(cache: ResultCache, size: int, tag: str = '"t"', origin: str | None = '"o"') -> Entry:
    rendered = Rendered(b"x" * size, "image/jpeg")
    return Entry(rendered, tag, None, origin, None, cache.fresh_until())


def test_fresh_for_the_ttl_then_stale_but_kept_for_revalidation() -> None:
    clock = Clock()
    cache = ResultCache(1000, ttl=60, clock=clock)
    assert cache.lookup("k") == (None, False)
    stored = entry(cache, 10)
    assert cache.put("k", stored)
    assert cache.lookup("k") == (stored, True)
    clock.now += 59.9
    assert cache.lookup("k") == (stored, True)
    clock.now += 0.1
    assert cache.lookup("k") == (stored, False)
    assert stored.revalidatable
    renewed = cache.renew("k", stored, "Sun, 06 Nov 1994 08:49:37 GMT", ('"o2"', None))
    assert cache.lookup("k") == (renewed, True)
    assert (renewed.origin_etag, renewed.last_modified) == ('"o2"', "Sun, 06 Nov 1994 08:49:37 GMT")
    assert renewed.rendered is stored.rendered
    assert cache.bytes == 10 and len(cache) == 1


def test_an_entry_over_an_eighth_is_not_stored_and_drops_the_old_one() -> None:
    cache = ResultCache(800, ttl=60, clock=Clock())
    assert cache.put("k", entry(cache, 100))  # exactly an eighth
    assert not cache.put("k", entry(cache, 101))
    assert cache.lookup("k") == (None, False)
    assert cache.bytes == 0


def test_least_recently_used_goes_first() -> None:
    cache = ResultCache(800, ttl=60, clock=Clock())
    for key in "abcdefgh":
        assert cache.put(key, entry(cache, 100))
    assert cache.bytes == 800
    cache.lookup("a")  # a is now the most recent; b the least
    cache.put("i", entry(cache, 100))
    assert cache.lookup("b") == (None, False)
    assert cache.lookup("a")[0] is not None
    cache.put("j", entry(cache, 100))  # then c
    assert cache.lookup("c") == (None, False)
    assert cache.bytes == 800 and len(cache) == 8


def test_replacing_an_entry_counts_its_bytes_once() -> None:
    cache = ResultCache(800, ttl=60, clock=Clock())
    cache.put("k", entry(cache, 100))
    cache.put("k", entry(cache, 50))
    assert cache.bytes == 50 and len(cache) == 1


def test_the_bodies_never_exceed_the_size() -> None:
    rng = random.Random(7)
    cache = ResultCache(10_000, ttl=60, clock=Clock())
    for step in range(2000):
        key = rng.randrange(300)
        if rng.random() < 0.3:
            cache.lookup(key)
        cache.put(key, entry(cache, rng.randrange(1, 1400)))
        assert cache.bytes <= 10_000, step
        assert cache.bytes == sum(e.size for e in cache._entries.values())


def test_without_origin_validators_an_entry_cannot_be_revalidated() -> None:
    cache = ResultCache(800, ttl=60, clock=Clock())
    assert not entry(cache, 1, origin=None).revalidatable
