"""The fetch result type (fetch/result.py): immutable, header mapping → fields."""

from __future__ import annotations

import dataclasses

import pytest
from multidict import CIMultiDict

from imaged.fetch import FetchResult


def test_fields_come_from_the_case_insensitive_header_mapping() -> None:
    headers = CIMultiDict(
        [("etag", '"a"'), ("ETag", '"b"'), ("last-modified", "x"), ("content-TYPE", "image/gif")]
    )
    result = FetchResult.from_headers(b"GIF89a", headers)
    # A repeated header: the first value.
    assert result == FetchResult(b"GIF89a", '"a"', "x", "image/gif")


def test_absent_and_empty_headers_are_none() -> None:
    assert FetchResult.from_headers(b"", CIMultiDict()) == FetchResult(b"", None, None, None)
    empty = CIMultiDict([("ETag", ""), ("Last-Modified", ""), ("Content-Type", "")])
    assert FetchResult.from_headers(b"x", empty) == FetchResult(b"x", None, None, None)


def test_immutable_and_the_body_stays_out_of_repr() -> None:
    result = FetchResult(b"\x89PNG" * 1000, etag='"e"')
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.etag = '"other"'  # type: ignore[misc]
    assert repr(result) == ("FetchResult(etag='\"e\"', last_modified=None, content_type=None)")
