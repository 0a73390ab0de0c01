"""`jsonfmt.dumps`, imaged's own small JSON encoder: standard JSON for everything but
floats, which print as JavaScript prints them (README, Cross-cutting conventions)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imaged.jsonfmt import dumps

_SCALARS = st.none() | st.booleans() | st.integers() | st.text()


def _trees(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=30
    )


@settings(max_examples=300, deadline=None)
@given(_trees(_SCALARS))
def test_without_floats_it_is_compact_standard_json(value: Any) -> None:
    assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=300, deadline=None)
@given(_trees(_SCALARS | st.floats(allow_nan=False, allow_infinity=False)))
def test_finite_floats_round_trip(value: Any) -> None:
    assert json.loads(dumps(value)) == value


def test_floats_print_as_in_javascript() -> None:
    values = {
        "int": 1.0,
        "negzero": -0.0,
        "nan": math.nan,
        "inf": -math.inf,
        "big": 1e21,
        "positional": 1e20,
        "small": 1e-7,
        "tiny": 1.5e-6,
        "plain": 0.1,
    }
    assert dumps(values) == (
        '{"int":1,"negzero":0,"nan":null,"inf":null,"big":1e+21,'
        '"positional":100000000000000000000,"small":1e-7,"tiny":0.0000015,"plain":0.1}'
    )


def test_strings_are_raw_utf8_with_json_escapes() -> None:
    assert dumps(["é→😀", 'a"b\\c\n\x01']) == '["é→😀","a\\"b\\\\c\\n\\u0001"]'


def test_tuples_are_arrays_and_keys_are_strings() -> None:
    assert dumps({1: (1, 2), 2.5: [], None: {}}) == '{"1":[1,2],"2.5":[],"None":{}}'
    assert dumps({1: "a", "1": "b"}) == '{"1":"b"}'  # keys that print alike are one member


def test_other_types_are_refused() -> None:
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        dumps({"a": object()})
