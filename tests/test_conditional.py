"""ETags, HTTP dates and precondition evaluation (caching.md; RFC 9110 §8.8, §13.1)."""

from __future__ import annotations

import re

import pytest

from imaged.engine.options import MetadataOptions, TransformOptions
from imaged.server.conditional import (
    ANY,
    Conditions,
    format_http_date,
    last_modified,
    make_etag,
    parse_http_date,
    parse_if_none_match,
    source_digest,
)

ETAG = re.compile(r'"[A-Za-z0-9_-]{1,64}"')
SUNDAY = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example


def test_an_etag_is_strong_quoted_and_within_the_alphabet() -> None:
    tag = make_etag(source_digest(b"bytes"), "transform", TransformOptions())
    assert ETAG.fullmatch(tag)
    assert not tag.startswith("W/")


def test_the_etag_depends_on_bytes_route_and_every_option() -> None:
    digest = source_digest(b"source")
    base = make_etag(digest, "transform", TransformOptions(width=300))
    assert base == make_etag(source_digest(b"source"), "transform", TransformOptions(width=300))
    others = {
        make_etag(source_digest(b"source!"), "transform", TransformOptions(width=300)),
        make_etag(digest, "transform", TransformOptions(width=301)),
        make_etag(digest, "transform", TransformOptions(width=300, format="webp")),
        make_etag(digest, "transform", TransformOptions(width=300, blur=0.3)),
        make_etag(digest, "metadata", MetadataOptions()),
        make_etag(digest, "metadata", MetadataOptions(exif=True)),
    }
    assert base not in others and len(others) == 6


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # ANSI C asctime()
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
    ],
)
def test_the_three_http_date_forms(text: str) -> None:
    assert parse_http_date(text) == SUNDAY


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT; length=3",
        "1994-11-06T08:49:37Z",
    ],
)
def test_invalid_http_dates(text: str) -> None:
    assert parse_http_date(text) is None


def test_last_modified_is_passed_through_in_the_preferred_form_or_dropped() -> None:
    assert last_modified("Sun, 06 Nov 1994 08:49:37 GMT") == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert last_modified("Sunday, 06-Nov-94 08:49:37 GMT") == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert last_modified("not a date") is None
    assert last_modified(None) is None
    assert format_http_date(SUNDAY) == "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['"abc"'], frozenset({"abc"})),
        (['W/"abc"'], frozenset({"abc"})),
        (['"a", W/"b" ,"c"'], frozenset({"a", "b", "c"})),
        (['"a"', '"b"'], frozenset({"a", "b"})),  # several header lines are one list
        (['"a", , "b"'], frozenset({"a", "b"})),
        (['""'], frozenset({""})),
        (["*"], ANY),
        ([" * "], ANY),
    ],
)
def test_if_none_match_lists(lines: list[str], expected: object) -> None:
    assert parse_if_none_match(lines) == expected


@pytest.mark.parametrize(
    "lines", [[], [""], ["abc"], ['"a" "b"'], ['"a", b'], ['"a'], ['w/"a"'], ['"a", *']]
)
def test_malformed_if_none_match_is_ignored(lines: list[str]) -> None:
    assert parse_if_none_match(lines) is None


def test_if_none_match_uses_the_weak_comparison() -> None:
    tag = '"tag1"'
    assert Conditions.parse(['W/"tag1"'], None).not_modified(tag, None)
    assert Conditions.parse(['"x", "tag1"'], None).not_modified(tag, None)
    assert Conditions.parse(["*"], None).not_modified(tag, None)
    assert not Conditions.parse(['"tag2"'], None).not_modified(tag, None)
    assert not Conditions.parse(["garbage"], None).not_modified(tag, None)
    assert not Conditions.parse([], None).not_modified(tag, None)


def test_if_modified_since_only_without_if_none_match_and_with_last_modified() -> None:
    modified = "Sun, 06 Nov 1994 08:49:37 GMT"
    later = "Mon, 07 Nov 1994 08:49:37 GMT"
    earlier = "Sat, 05 Nov 1994 08:49:37 GMT"
    assert Conditions.parse([], modified).not_modified('"t"', modified)
    assert Conditions.parse([], later).not_modified('"t"', modified)
    assert not Conditions.parse([], earlier).not_modified('"t"', modified)
    assert not Conditions.parse([], later).not_modified('"t"', None)  # no Last-Modified
    assert not Conditions.parse([], "not a date").not_modified('"t"', modified)
    # If-None-Match decides alone, even when it does not match …
    assert not Conditions.parse(['"other"'], later).not_modified('"t"', modified)
    # … unless it is malformed, hence ignored as if absent.
    assert Conditions.parse(["garbage"], later).not_modified('"t"', modified)
    assert Conditions.parse([], later).present
    assert not Conditions.parse([], None).present
