"""Strict JSON (S1, issue 12 item 1; RFC 8259): exact outcomes for a table of bodies, the limits
at their edges, and the fast pre-check ``needs_check`` never missing a body that ``loads``
refuses for its values (a property over generated documents)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drready.security.strict_json import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    JsonRefusedError,
    format_path,
    loads,
    needs_check,
)

ACCEPTED: list[tuple[bytes, Any]] = [
    (b'{"a": [1, 2.5, "x", true, null]}', {"a": [1, 2.5, "x", True, None]}),
    (b"[1e-400]", [0.0]),  # underflow is finite
    (b"[-0.0, 1E+2, 1e99]", [-0.0, 100.0, 1e99]),
    (b"[" + b"1" * MAX_NUMBER_CHARS + b"]", [int("1" * MAX_NUMBER_CHARS)]),
    (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)),
    (b'{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', {"s": "[" * 38}),  # in a string
    (b'["\\ud83d\\ude00", "\\\\u0000"]', ["\U0001f600", "\\u0000"]),  # a pair; an escaped "\"
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a byte order mark is ignored (§8.1)
    ('{"名前": "値"}'.encode(), {"名前": "値"}),
]

REFUSED: list[tuple[bytes, str]] = [
    (b'{"a": NaN}', "a: NaN is not a JSON number (RFC 8259 §6)"),
    (b"[1, Infinity]", "1: Infinity is not a JSON number (RFC 8259 §6)"),
    (b'{"v": [-Infinity]}', "v.0: -Infinity is not a JSON number (RFC 8259 §6)"),
    (b"[1e400]", "0: number 1e400 is out of the finite range (RFC 8259 §6)"),
    (b"[-1.5E+309]", "0: number -1.5E+309 is out of the finite range (RFC 8259 §6)"),
    (
        b"[" + b"1" * (MAX_NUMBER_CHARS + 1) + b"]",
        "0: number literal longer than 100 characters",
    ),
    (b'{"a": "x\\u0000"}', "a: U+0000 (NUL) is not allowed in strings"),
    (b'{"a\\u0000": 1}', '"a\\u0000": property name: U+0000 (NUL) is not allowed in strings'),
    (b'["\\ud800"]', "0: unpaired UTF-16 surrogate in a string (RFC 8259 §8.2)"),
    (b'{"a.b": [NaN]}', '"a.b".0: NaN is not a JSON number (RFC 8259 §6)'),
    (
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
        "body: arrays and objects nested deeper than 32 levels",
    ),
    ('{"a": 1}'.encode("utf-16"), "body: not UTF-8 (RFC 8259 §8.1): invalid start byte"),
    (b'{"a": "\xff"}', "body: not UTF-8 (RFC 8259 §8.1): invalid start byte"),
    (b'{"a": ', "body: not valid JSON (Expecting value: line 1 column 7 (char 6))"),
    (b'{"a": 1, "b": NaN, "c": 1e999}', "b: NaN is not a JSON number (RFC 8259 §6)"),  # first
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED)
def test_accepted(raw: bytes, expected: Any) -> None:
    assert loads(raw) == expected


@pytest.mark.parametrize(("raw", "message"), REFUSED)
def test_refused_with_the_place_and_the_rule(raw: bytes, message: str) -> None:
    with pytest.raises(JsonRefusedError) as caught:
        loads(raw)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("path", "text"),
    [((), "body"), (("a", 0, "b"), "a.0.b"), (("a.b",), '"a.b"'), (("x\ny",), '"x\\ny"')],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


def test_deep_and_wide_bodies_are_cheap() -> None:
    deep = b"[" * 500_000 + b"]" * 500_000  # 1 MB: json.loads would recurse and raise
    started = time.perf_counter()
    with pytest.raises(JsonRefusedError, match="nested deeper"):
        loads(deep)
    assert time.perf_counter() - started < 1.0  # C-speed scans (≈ 0.05 s here)


NUMBERS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(
        r"-?(0|[1-9][0-9]{0,120})(\.[0-9]{1,120})?([eE][-+]?[0-9]{1,4})?", fullmatch=True
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "1E-400", "9" * 101]),
)
STRINGS = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\\", '"', "e"])
).map(lambda s: json.dumps(s))
LEAVES = NUMBERS | STRINGS | st.sampled_from(["true", "false", "null"])
DOCUMENTS = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
        | st.lists(st.tuples(STRINGS, inner), max_size=4).map(
            lambda kvs: "{" + ",".join(f"{k}:{v}" for k, v in kvs) + "}"
        )
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_needs_check_never_misses_a_refusal(document: str) -> None:
    raw = document.encode()
    try:
        loads(raw)
    except JsonRefusedError as err:
        assert needs_check(raw) or "nested deeper" in str(err), (document, str(err))
    else:
        value = json.loads(raw)
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(value)), (
            document
        )


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]
