"""The per-request Cache-Control of server/caching.py: a signed URL's time left caps
`max-age` and `s-maxage` (access.md, caching.md)."""

from __future__ import annotations

import pytest

from imaged.server.caching import capped


@pytest.mark.parametrize(
    ("configured", "left", "expected"),
    [
        ("public, max-age=31536000", None, "public, max-age=31536000"),
        ("public, max-age=31536000", 120, "public, max-age=120"),
        ("public, max-age=60", 120, "public, max-age=60"),  # already shorter
        ("public, max-age=600, s-maxage=900", 300, "public, max-age=300, s-maxage=300"),
        ("public, s-maxage=900", 30, "public, s-maxage=30"),
        ("public, MAX-AGE=600", 5, "public, MAX-AGE=5"),
        ('public, max-age="600"', 5, "public, max-age=5"),
        ("public, max-age = 600", 5, "public, max-age=5"),
        ("public, max-age=600", 0, "public, max-age=0"),  # due now
        ("public", 300, "public, max-age=300"),  # no heuristic freshness past the expiry
        ("public, x-max-age=9", 300, "public, x-max-age=9, max-age=300"),  # another name
        ("no-store", 300, "no-store"),
        ("", 300, ""),  # no header stays no header
    ],
)
def test_a_signed_expiry_caps_the_freshness(
    configured: str, left: int | None, expected: str
) -> None:
    assert capped(configured, left) == expected
