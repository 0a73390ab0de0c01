"""The SSRF guard: which addresses the fetch client may connect to, and the one lookup per hop.

Ranges and reason texts follow fetch-and-security.md (SSRF protection) plus every range its
[IMPROVE] note lists. IPv6 forms that embed an IPv4 address are judged by that address.
Anything that is not a well-formed IP address is refused (fail closed), unlike the original.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence

from imaged.errors import FetchBlocked, FetchError, FetchTimeout

#: Resolves a host name to addresses (strings, in resolver order). Injectable for tests.
Lookup = Callable[[str, int], Awaitable[Sequence[str]]]
#: Maps an address to the reason it is blocked, or None when it may be connected to.
Policy = Callable[[str], "str | None"]

UNPARSABLE = "Unrecognised address"

_V4 = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "Current network"),
        ("10.0.0.0/8", "Private network"),
        ("100.64.0.0/10", "Carrier-grade NAT"),
        ("127.0.0.0/8", "Loopback"),
        ("169.254.0.0/16", "Link-local"),
        ("172.16.0.0/12", "Private network"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.168.0.0/16", "Private network"),
        ("198.18.0.0/15", "Benchmarking"),
        ("224.0.0.0/4", "Multicast"),
        ("240.0.0.0/4", "Reserved"),
    )
)

# Whole IPv6 ranges that are never a legitimate fetch target.
_V6 = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("fe80::/10", "Link-local"),
        ("fec0::/10", "Site-local"),
        ("fc00::/7", "Unique local"),
        ("ff00::/8", "Multicast"),
        ("2001::/32", "Teredo"),
        ("64:ff9b:1::/48", "NAT64 local-use"),
    )
)

# IPv6 ranges that carry an IPv4 address: (network, label, bit offset of the IPv4 address,
# whether a public embedded address is still refused). The low-32-bit forms are translated
# or tunnelled to that IPv4 address, so they must not reach a blocked one; IPv4-compatible
# addresses are deprecated (RFC 4291) and refused outright.
_EMBEDDING = tuple(
    (ipaddress.IPv6Network(net), label, shift, always)
    for net, label, shift, always in (
        ("::ffff:0:0/96", "IPv4-mapped", 0, False),
        ("::ffff:0:0:0/96", "IPv4-translated", 0, False),
        ("64:ff9b::/96", "NAT64", 0, False),
        ("2002::/16", "6to4", 80, False),
        ("::/96", "IPv4-compatible", 0, True),
    )
)

_CANONICAL_V4 = re.compile(r"(?:(?:0|[1-9][0-9]{0,2})\.){3}(?:0|[1-9][0-9]{0,2})")


def _v4_reason(address: ipaddress.IPv4Address) -> str | None:
    for network, reason in _V4:
        if address in network:
            return reason
    return None


def _v6_reason(address: ipaddress.IPv6Address) -> str | None:
    if address == ipaddress.IPv6Address("::"):
        return "Unspecified"
    if address == ipaddress.IPv6Address("::1"):
        return "Loopback"
    for range_, reason in _V6:
        if address in range_:
            return reason
    for network, label, shift, always in _EMBEDDING:
        if address in network:
            embedded = ipaddress.IPv4Address((int(address) >> shift) & 0xFFFFFFFF)
            inner = _v4_reason(embedded)
            if inner is not None:
                return f"{label} {inner}"
            return label if always else None
    return None


def blocked_reason(address: str) -> str | None:
    """Why `address` (an IPv4 or IPv6 literal, IPv6 optionally in brackets or with a zone)
    must not be fetched from, or None when it is public. Unparsable text is blocked."""
    text = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return UNPARSABLE
    if isinstance(parsed, ipaddress.IPv4Address):
        return _v4_reason(parsed)
    return _v6_reason(parsed)


def literal_address(hostname: str) -> str | None:
    """The address a canonical host names without DNS: a dotted IPv4 literal or a
    bracketed IPv6 literal (brackets removed). None for a domain name."""
    if _CANONICAL_V4.fullmatch(hostname):
        return hostname
    if hostname.startswith("[") and hostname.endswith("]"):
        # Whatever is inside goes to the policy, which refuses anything unparsable.
        return hostname[1:-1]
    return None


async def os_lookup(host: str, port: int) -> list[str]:
    """getaddrinfo over all address families; every result, in resolver order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


async def checked_addresses(
    hostname: str, port: int, lookup: Lookup, policy: Policy, timeout: float
) -> list[str]:
    """Resolve `hostname` once and check every address; the result is what may be
    connected to. DNS failure → 400; the first blocked address (resolver order) → 403."""
    literal = literal_address(hostname)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            async with asyncio.timeout(timeout):
                addresses = list(await lookup(hostname, port))
        except TimeoutError as exc:
            raise FetchTimeout(f"DNS resolution failed for {hostname}", 400) from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise FetchError(f"DNS resolution failed for {hostname}", 400) from exc
        if not addresses:
            raise FetchError(f"DNS resolution failed for {hostname}", 400)
    for address in addresses:
        reason = policy(address)
        if reason is not None:
            raise FetchBlocked(f"host resolves to private IP ({reason})", 403)
    return addresses
