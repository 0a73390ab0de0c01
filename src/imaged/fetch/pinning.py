"""aiohttp resolvers: pinning to checked addresses, or plain lookups without protection.

With SSRF protection the fetch loop resolves and checks a host itself, then publishes the
checked addresses in a context variable for the duration of that one request. The
connector's resolver only hands those back — it never performs a lookup — so the socket is
opened to exactly an address that passed the check (no DNS-rebinding window), while the
URL, Host header and TLS SNI keep the original host name.
"""

from __future__ import annotations

import contextvars
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult

from imaged.fetch.ssrf import Lookup


@dataclass(frozen=True)
class Pin:
    hostname: str
    addresses: tuple[str, ...]


_PIN: contextvars.ContextVar[Pin | None] = contextvars.ContextVar("imaged_fetch_pin", default=None)


@contextmanager
def pinned(hostname: str, addresses: Sequence[str]) -> Iterator[None]:
    """Within this block, connections to `hostname` go only to `addresses`."""
    token = _PIN.set(Pin(hostname, tuple(addresses)))
    try:
        yield
    finally:
        _PIN.reset(token)


def _results(host: str, port: int, addresses: Sequence[str]) -> list[ResolveResult]:
    return [
        ResolveResult(
            hostname=host,
            host=address,
            port=port,
            family=socket.AF_INET6 if ":" in address else socket.AF_INET,
            proto=0,
            flags=socket.AI_NUMERICHOST,
        )
        for address in addresses
    ]


class PinnedResolver(AbstractResolver):
    """Answers only with the addresses pinned for the current request; anything else is a
    resolution failure (fail closed), so the connector can never reach an unchecked host."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pin = _PIN.get()
        if pin is None or pin.hostname != host:
            raise OSError(f"no checked address for {host}")
        return _results(host, port, pin.addresses)

    async def close(self) -> None:
        return None


class LookupResolver(AbstractResolver):
    """Without SSRF protection: the OS resolver (or an injected lookup), unchecked."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = list(await self._lookup(host, port))
        if not addresses:
            raise OSError(f"no address for {host}")
        return _results(host, port, addresses)

    async def close(self) -> None:
        return None
