"""The SSRF address policy and the one-lookup-per-hop resolution (fetch-and-security.md).

Only the classification of "public" addresses is tested here; nothing is connected to.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import pytest

from imaged.errors import FetchError
from imaged.fetch.ssrf import (
    UNPARSABLE,
    blocked_reason,
    checked_addresses,
    literal_address,
    os_lookup,
)

SPEC_TABLE = [
    ("0.0.0.0", "Current network"),
    ("0.255.255.255", "Current network"),
    ("10.0.0.1", "Private network"),
    ("10.255.255.255", "Private network"),
    ("127.0.0.1", "Loopback"),
    ("127.255.255.254", "Loopback"),
    ("169.254.169.254", "Link-local"),
    ("172.16.0.1", "Private network"),
    ("172.31.255.255", "Private network"),
    ("192.168.1.1", "Private network"),
    ("224.0.0.1", "Multicast"),
    ("239.255.255.255", "Multicast"),
    ("240.0.0.1", "Reserved"),
    ("255.255.255.255", "Reserved"),
    ("::1", "Loopback"),
    ("::", "Unspecified"),
    ("fe80::1", "Link-local"),
    ("febf:ffff::1", "Link-local"),
    ("fc00::1", "Unique local"),
    ("fd12:3456::1", "Unique local"),
    ("ff02::1", "Multicast"),
    ("::ffff:127.0.0.1", "IPv4-mapped Loopback"),
    ("::ffff:7f00:1", "IPv4-mapped Loopback"),
    ("::ffff:10.1.2.3", "IPv4-mapped Private network"),
    ("::ffff:169.254.169.254", "IPv4-mapped Link-local"),
    ("::ffff:0.0.0.0", "IPv4-mapped Current network"),
]

IMPROVED = [
    ("100.64.0.1", "Carrier-grade NAT"),
    ("100.127.255.255", "Carrier-grade NAT"),
    ("192.0.0.8", "IETF protocol assignments"),
    ("198.18.0.1", "Benchmarking"),
    ("198.19.255.255", "Benchmarking"),
    ("::127.0.0.1", "IPv4-compatible Loopback"),
    ("::7f00:1", "IPv4-compatible Loopback"),
    ("::10.0.0.1", "IPv4-compatible Private network"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("::2", "IPv4-compatible Current network"),
    ("64:ff9b::127.0.0.1", "NAT64 Loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 Link-local"),
    ("64:ff9b:1::1", "NAT64 local-use"),
    ("2002:7f00:1::1", "6to4 Loopback"),
    ("2002:c0a8:101::", "6to4 Private network"),
    ("2001::1", "Teredo"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("fec0::1", "Site-local"),
    ("feff:ffff::1", "Site-local"),
    ("::ffff:0:127.0.0.1", "IPv4-translated Loopback"),
    ("::ffff:100.64.0.1", "IPv4-mapped Carrier-grade NAT"),
]

PUBLIC = [
    "172.32.0.1",
    "172.15.255.255",
    "192.169.1.1",
    "169.253.1.1",
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",
    "100.128.0.0",
    "192.0.1.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
    "2001:1::1",
    "2a00:1450:4001::200e",
]


@pytest.mark.parametrize(("address", "reason"), SPEC_TABLE + IMPROVED)
def test_blocked_ranges_and_reasons(address: str, reason: str) -> None:
    assert blocked_reason(address) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert blocked_reason(address) is None


def test_brackets_and_zone_indices() -> None:
    assert blocked_reason("[::1]") == "Loopback"
    assert blocked_reason("[::ffff:7f00:1]") == "IPv4-mapped Loopback"
    # The original treated zone-indexed addresses as public; they are link-local.
    assert blocked_reason("fe80::1%eth0") == "Link-local"
    assert blocked_reason("[2001:4860:4860::8888]") is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "example.com",
        "1.2.3",
        "01.2.3.4",
        "1.2.3.4 ",
        "256.1.1.1",
        "0x7f.0.0.1",
        "2130706433",
        "١٢٧.0.0.1",
        "::ffff:999.0.0.1",
        "1::2::3",
        "[::1",
        "fe80::1%",
    ],
)
def test_unparsable_addresses_fail_closed(text: str) -> None:
    assert blocked_reason(text) == UNPARSABLE


def test_literal_addresses_need_no_lookup() -> None:
    assert literal_address("127.0.0.1") == "127.0.0.1"
    assert literal_address("[::ffff:7f00:1]") == "::ffff:7f00:1"
    assert literal_address("example.com") is None
    assert literal_address("localhost") is None
    assert literal_address("127.0.0.1.example") is None


class Lookups:
    """An injectable lookup that records its calls and answers from a table."""

    def __init__(self, answers: dict[str, Sequence[str] | BaseException]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        answer = self.answers[host]
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def test_names_are_looked_up_once_and_every_address_checked() -> None:
    lookup = Lookups({"a.test": ["8.8.8.8", "2001:4860:4860::8888"]})
    assert await checked_addresses("a.test", 80, lookup, blocked_reason, 1.0) == [
        "8.8.8.8",
        "2001:4860:4860::8888",
    ]
    assert lookup.calls == [("a.test", 80)]

    lookup = Lookups({"mixed.test": ["8.8.8.8", "10.0.0.1", "::1"]})
    with pytest.raises(FetchError) as caught:
        await checked_addresses("mixed.test", 443, lookup, blocked_reason, 1.0)
    assert (caught.value.status, caught.value.message) == (
        403,
        "fetch: host resolves to private IP (Private network)",
    )

    # The first blocked address in resolver order gives the reason.
    lookup = Lookups({"two.test": ["::1", "10.0.0.1"]})
    with pytest.raises(FetchError, match=r"\(Loopback\)$"):
        await checked_addresses("two.test", 80, lookup, blocked_reason, 1.0)


async def test_literals_bypass_the_lookup() -> None:
    lookup = Lookups({})
    with pytest.raises(FetchError, match=r"\(IPv4-mapped Loopback\)$"):
        await checked_addresses("[::ffff:7f00:1]", 80, lookup, blocked_reason, 1.0)
    assert await checked_addresses("8.8.8.8", 80, lookup, blocked_reason, 1.0) == ["8.8.8.8"]
    assert lookup.calls == []


async def test_unparsable_resolver_answers_are_refused() -> None:
    lookup = Lookups({"odd.test": ["8.8.8.8", "not-an-address"]})
    with pytest.raises(FetchError, match=r"\(Unrecognised address\)$") as caught:
        await checked_addresses("odd.test", 80, lookup, blocked_reason, 1.0)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "answer",
    [socket.gaierror(socket.EAI_NONAME, "Name or service not known"), OSError("boom"), []],
)
async def test_dns_failures(answer: Sequence[str] | BaseException) -> None:
    lookup = Lookups({"gone.test": answer})
    with pytest.raises(FetchError) as caught:
        await checked_addresses("gone.test", 80, lookup, blocked_reason, 1.0)
    assert (caught.value.status, caught.value.message) == (
        400,
        "fetch: DNS resolution failed for gone.test",
    )


async def test_a_hanging_lookup_times_out_as_a_dns_failure() -> None:
    async def hang(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(30)  # the hanging resolver under test
        return ["8.8.8.8"]

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(FetchError, match=r"DNS resolution failed for slow\.test"):
        await checked_addresses("slow.test", 80, hang, blocked_reason, 0.2)
    assert loop.time() - started < 2


async def test_os_lookup_uses_the_system_resolver_for_localhost() -> None:
    addresses = await os_lookup("localhost", 80)
    assert addresses and all(blocked_reason(a) == "Loopback" for a in addresses)
