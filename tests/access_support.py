"""Signing for the access-control tests, computed independently of `imaged.signing` (plain
`hmac` + `base64`, straight from access.md), plus the published test vectors of
docs/security.md read back from the page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from tests.serverproc import ROOT

KEY_NEW = "3f" * 16 + "a1" * 16  # first in --signing-keys: the one clients sign with
KEY_OLD = "0123456789abcdef" * 4  # still verifies (rotation)
KEY_OTHER = "c0ffee" * 10 + "beef"  # never configured
KEYS = f"{KEY_NEW},{KEY_OLD}"
TOKEN = "tok-ABCdef0123456789"
TOKEN_2 = "second.token_with~all+chars/=="
TOKENS = f"{TOKEN},{TOKEN_2}"
FAR_FUTURE = 4102444800  # 2100-01-01
SECURITY_DOC = ROOT / "docs" / "security.md"


def mac(key_hex: str, message: bytes) -> str:
    """base64url without padding of HMAC-SHA256(key, message)."""
    digest = hmac.new(bytes.fromhex(key_hex), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def signed(target: str, key_hex: str = KEY_NEW) -> str:
    """`target` with `sig` appended as its last parameter, signed over the exact bytes."""
    separator = "&" if "?" in target else "?"
    return f"{target}{separator}sig={mac(key_hex, target.encode())}"


@dataclass(frozen=True)
class Vector:
    number: int
    key: str
    path_and_query: str
    expires: int | None
    signed: str


def vectors() -> list[Vector]:
    """The rows of the "Test vectors" table of docs/security.md."""
    section = SECURITY_DOC.read_text().split("### Test vectors", 1)[1].split("\n### ", 1)[0]
    found = []
    for line in section.splitlines():
        match = re.fullmatch(r"\| (\d+) \| `(\w+)` \| `([^`]+)` \| (—|`\d+`) \| `([^`]+)` \|", line)
        if match:
            number, key, target, expires, result = match.groups()
            found.append(
                Vector(int(number), key, target, None if expires == "—" else int(expires[1:-1]),
                       result)
            )  # fmt: skip
    return found
