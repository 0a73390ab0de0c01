"""imaged.signing, the public client API: what is signed, the order of the checks, expiry,
keys, and the published test vectors (docs/security.md), all against an HMAC computed here
with plain `hmac` (tests/access_support.py), never with the module under test."""

from __future__ import annotations

import doctest
import time

import pytest

import imaged.signing
from imaged.signing import (
    EXPIRED,
    INVALID_EXPIRES,
    INVALID_SIGNATURE,
    MISSING_SIGNATURE,
    SignatureError,
    equals_any,
    parse_expires,
    parse_key,
    sign,
    signature,
    verify,
)
from tests.access_support import KEY_NEW, KEY_OLD, KEY_OTHER, Vector, mac, signed, vectors

NEW = bytes.fromhex(KEY_NEW)
OLD = bytes.fromhex(KEY_OLD)
SPEC_EXAMPLE = "/transform?url=https%3A%2F%2Fa.example%2Fp.jpg&width=300"


def refusal(target: str, keys: list[bytes], now: float | None = None) -> str:
    with pytest.raises(SignatureError) as info:
        verify(target, keys, now)
    return str(info.value)


def test_the_docstring_example_runs() -> None:
    result = doctest.testmod(imaged.signing, raise_on_error=False)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (SPEC_EXAMPLE, SPEC_EXAMPLE),  # the spec's example: the message is the target
        ("/transform", "/transform"),  # no query: `?sig=` is appended, `?` is not signed
        ("/transform?", "/transform?"),  # an empty query still precedes sig
        ("/metadata?a=1&", "/metadata?a=1&"),  # so does an empty pair
        ("/transform?url=a%2Bb+c~%28%C3%A9%29&x", "/transform?url=a%2Bb+c~%28%C3%A9%29&x"),
    ],
)
def test_sign_appends_sig_over_the_exact_bytes(target: str, message: str) -> None:
    result = sign(target, NEW)
    assert result == signed(target)  # the independent signer agrees byte for byte
    separator = "&" if "?" in target else "?"
    assert result == f"{target}{separator}sig={mac(KEY_NEW, message.encode())}"
    assert len(result.rsplit("sig=", 1)[1]) == 43
    assert verify(result, NEW) is None


def test_expires_is_appended_before_sig_and_signed() -> None:
    result = sign(SPEC_EXAMPLE, NEW, expires=1767225600)
    assert result == signed(f"{SPEC_EXAMPLE}&expires=1767225600")
    assert sign("/metadata", NEW, expires=7) == signed("/metadata?expires=7")
    assert verify(result, [OLD, NEW], now=1767225600) == 1767225600


@pytest.mark.parametrize(
    ("target", "expires", "error"),
    [
        ("https://a.example/transform?width=1", None, "must start with '/'"),
        ("transform?width=1", None, "must start with '/'"),
        ("/transform?width=1&sig=abc", None, "already signed"),
        ("/transform?sig", None, "already signed"),
        ("/transform?s%69g=x", None, "already signed"),  # decoded, it is a `sig`
        ("/transform?expires=5", 6, "already has an expires parameter"),
        ("/transform", -1, "invalid expires"),
        ("/transform", 10**12, "invalid expires"),
    ],
)
def test_sign_refuses(target: str, expires: int | None, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        sign(target, NEW, expires)


def test_every_key_verifies() -> None:
    for key in (KEY_NEW, KEY_OLD):
        assert verify(signed(SPEC_EXAMPLE, key), [NEW, OLD]) is None
    assert refusal(signed(SPEC_EXAMPLE, KEY_OTHER), [NEW, OLD]) == INVALID_SIGNATURE
    assert refusal(signed(SPEC_EXAMPLE, KEY_OLD), [NEW]) == INVALID_SIGNATURE  # dropped
    assert refusal(signed(SPEC_EXAMPLE), []) == INVALID_SIGNATURE


@pytest.mark.parametrize(
    "target",
    [
        SPEC_EXAMPLE,  # no sig at all
        "/transform",
        f"/transform?sig={mac(KEY_NEW, b'/transform')}&width=300",  # sig not last
        signed(SPEC_EXAMPLE) + "&",  # a trailing empty pair is after sig
        signed(SPEC_EXAMPLE) + "&width=1",
        SPEC_EXAMPLE + "&s%69g=" + mac(KEY_NEW, SPEC_EXAMPLE.encode()),  # not `sig` as sent
        SPEC_EXAMPLE + "&SIG=" + mac(KEY_NEW, SPEC_EXAMPLE.encode()),  # names are exact
    ],
)
def test_missing_signature(target: str) -> None:
    assert refusal(target, [NEW]) == MISSING_SIGNATURE


@pytest.mark.parametrize(
    "target",
    [
        SPEC_EXAMPLE + "&sig",  # present, empty
        SPEC_EXAMPLE + "&sig=",
        signed(SPEC_EXAMPLE) + "=",  # padding is not part of it
        signed(SPEC_EXAMPLE)[:-1],
        SPEC_EXAMPLE + "&sig=" + mac(KEY_NEW, SPEC_EXAMPLE.encode()).swapcase(),
        signed(SPEC_EXAMPLE).replace("width=300", "width=301"),
        signed(SPEC_EXAMPLE).replace("/transform", "/metadata"),
        signed(SPEC_EXAMPLE + "&x=1").replace("&x=1", ""),
        signed(SPEC_EXAMPLE) + "\udcff",  # a raw non-UTF-8 byte as aiohttp decodes it
    ],
)
def test_invalid_signature(target: str) -> None:
    assert refusal(target, [NEW, OLD]) == INVALID_SIGNATURE


@pytest.mark.parametrize(
    "raw",
    ["+1", "-1", "1.0", "1e3", " 1", "%201", "%31", "", "1234567890123", "１", "0x10", "1,2"],
)
def test_invalid_expires_is_the_raw_value(raw: str) -> None:
    assert refusal(signed(f"{SPEC_EXAMPLE}&expires={raw}"), [NEW]) == INVALID_EXPIRES
    with pytest.raises(SignatureError, match=INVALID_EXPIRES):
        parse_expires(raw)


def test_expires_variants() -> None:
    assert refusal(signed(f"{SPEC_EXAMPLE}&expires"), [NEW]) == INVALID_EXPIRES  # no value
    twice = signed(f"{SPEC_EXAMPLE}&expires=9&expires=9")
    assert refusal(twice, [NEW]) == INVALID_EXPIRES
    encoded_name = signed(f"{SPEC_EXAMPLE}&expire%73=1")  # decoded, it is `expires`
    assert refusal(encoded_name, [NEW], now=2) == EXPIRED
    assert verify(signed("/t?expires=000000000001"), NEW, now=1) == 1  # 12 digits, zeros
    assert verify(signed("/t?expires=999999999999"), NEW) == 999999999999


def test_signature_is_checked_before_expires() -> None:
    forged = f"{SPEC_EXAMPLE}&expires=abc&sig={'A' * 43}"
    assert refusal(forged, [NEW]) == INVALID_SIGNATURE
    expired_forgery = f"{SPEC_EXAMPLE}&expires=1&sig={'A' * 43}"
    assert refusal(expired_forgery, [NEW]) == INVALID_SIGNATURE


def test_expiry_boundary_is_whole_seconds() -> None:
    target = signed(f"{SPEC_EXAMPLE}&expires=1000")
    assert verify(target, NEW, now=999) == 1000
    assert verify(target, NEW, now=1000) == 1000  # not yet greater
    assert verify(target, NEW, now=1000.999) == 1000  # still second 1000
    assert refusal(target, [NEW], now=1001) == EXPIRED
    assert refusal(signed(f"{SPEC_EXAMPLE}&expires=1"), [NEW]) == EXPIRED  # the clock
    future = int(time.time()) + 3600
    assert verify(signed(f"{SPEC_EXAMPLE}&expires={future}"), NEW) == future


def test_keys() -> None:
    assert parse_key(KEY_NEW.upper()) == NEW
    assert parse_key("ab" * 40) == b"\xab" * 40  # longer keys are fine
    for bad in ["", "ab" * 31, "ab" * 31 + "a", "ab" * 32 + "a", "zz" * 32, "0x" + "ab" * 32,
                f" {KEY_NEW}"]:  # fmt: skip
        with pytest.raises(ValueError) as info:
            parse_key(bad)
        assert str(info.value) == "Invalid signing key"  # never the key


def test_equals_any() -> None:
    assert equals_any("b", ["a", "b", "c"]) and not equals_any("d", ["a", "b"])
    assert not equals_any("", []) and not equals_any("é", ["e"])
    assert signature("/x", NEW) == mac(KEY_NEW, b"/x")


# --- the published test vectors ----------------------------------------------------------


def test_at_least_five_vectors_with_every_edge_case() -> None:
    found = vectors()
    assert [v.number for v in found] == list(range(1, len(found) + 1)) and len(found) >= 5
    targets = " ".join(v.path_and_query for v in found)
    for edge in ("%2B", "+", "~", "%28", "%C3%A9", "%3F", "%26"):
        assert edge in targets, edge
    assert any(v.expires is not None for v in found) and any(v.expires is None for v in found)
    assert len({v.key for v in found}) >= 2


@pytest.mark.parametrize("vector", vectors(), ids=lambda v: f"vector{v.number}")
def test_vector(vector: Vector) -> None:
    message = vector.path_and_query
    if vector.expires is not None:
        message += f"{'&' if '?' in message else '?'}expires={vector.expires}"
    assert vector.signed == signed(message, vector.key)  # the documented value is right
    key = bytes.fromhex(vector.key)
    assert sign(vector.path_and_query, key, vector.expires) == vector.signed
    assert verify(vector.signed, [key], now=0) == vector.expires
