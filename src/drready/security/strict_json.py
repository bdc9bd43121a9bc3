"""Strict JSON for request bodies from peers we do not trust (S1: JC-STAR ★1 input validation;
C1: the VTN's wire format is JSON per RFC 8259).

Python's :func:`json.loads` and pydantic's parser are liberal where a server facing other
parties must not be: they accept ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON), turn
``1e400`` into ``inf``, recurse without a depth limit (``RecursionError`` past ~1 000 levels),
convert a 5 000-digit integer until Python's int-conversion limit raises ``ValueError``, and
keep ``\\u0000`` and lone surrogates (``\\ud800``) in strings, which PostgreSQL refuses in text
columns and UTF-8 cannot encode. :func:`loads` parses a body as RFC 8259 allows and refuses
all of that with :class:`JsonRefusedError`, which names the place (the path of keys and
indexes, as the VTN's other 400 answers do) and the rule:

* UTF-8 only (RFC 8259 §8.1; a leading byte order mark is ignored, as §8.1 permits);
* no ``NaN``/``Infinity``/``-Infinity`` literals, and every number finite as a binary64
  (RFC 8259 §6: "Numeric values that cannot be represented [...] such as Infinity and NaN are
  not permitted"; ``1e400`` overflows, so it is refused, ``1e-400`` underflows to 0 and passes);
* a number literal of at most :data:`MAX_NUMBER_CHARS` characters (§9: "An implementation may
  set limits on the range and precision of numbers");
* nesting of arrays and objects at most :data:`MAX_DEPTH` deep (§9: "An implementation may set
  limits on [...] the maximum depth of nesting"), checked before parsing, without recursion;
* strings (keys too) without U+0000 and without unpaired surrogates (§8.2: such strings make
  "the behavior of software that receives [them] unpredictable").

:func:`needs_check` is the cheap part for hot paths: a scan of the raw bytes that is ``False``
only when a body that some parser already accepted as JSON of bounded depth certainly passes
the checks above, so :func:`loads` runs only on bodies that might fail them.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "JsonPath",
    "JsonRefusedError",
    "format_path",
    "loads",
    "needs_check",
]

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted; the deepest OpenADR 3.1 request body
(report → resources → intervals → payloads → values → point) is 7 levels deep."""

MAX_NUMBER_CHARS = 100
"""Longest number literal accepted [characters, sign and exponent included]: ~ 17 significant
digits make a binary64, so 100 leave room for any honest spelling."""

JsonPath = tuple[str | int, ...]

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
_SURROGATE = re.compile("[\ud800-\udfff]")
# what a string holding U+0000 or a surrogate looks like in UTF-8 JSON text: only escaped
# (a raw NUL is invalid JSON, a raw surrogate invalid UTF-8)
_ESCAPED_FAULT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# a superset of what loads() refuses in a body that parsed: a run of more than
# MAX_NUMBER_CHARS number characters, an exponent of three or more digits after a digit (a
# finite, short literal has |exponent| < 100 + 100), the NaN/Infinity literals, and the escape
# of U+0000; found by translating the bytes to classes and searching substrings (C speed; a
# regex for the same was 5x slower on a report).


def _classes(groups: dict[bytes, str]) -> bytes:
    """A ``bytes.translate`` table: each byte of a group → its symbol, any other → a space."""
    table = bytearray(b" " * 256)
    for chars, symbol in groups.items():
        for c in chars:
            table[c] = ord(symbol)
    return bytes(table)


_NUMBER_CHARS = _classes({b"-+.0123456789eE": "n"})
_EXPONENT_CHARS = _classes({b"0123456789": "d", b"eE": "e", b"+-": "s"})
_LONG_RUN = b"n" * (MAX_NUMBER_CHARS + 1)


class JsonRefusedError(ValueError):
    """A body that is not strict JSON: ``path`` (keys and indexes; empty for the whole body)
    and ``reason``; ``str()`` is ``"<path>: <reason>"`` in :func:`format_path`'s form."""

    def __init__(self, path: JsonPath, reason: str) -> None:
        super().__init__(f"{format_path(path)}: {reason}")
        self.path = path
        self.reason = reason


def format_path(path: JsonPath) -> str:
    """``resources.0.intervals.1.payloads`` (``body`` for the empty path); keys with a dot,
    control characters or quotes are shown as JSON strings."""
    if not path:
        return "body"
    parts = []
    for part in path:
        if isinstance(part, int):
            parts.append(str(part))
        elif part and part.isprintable() and not any(c in part for c in '."\\'):
            parts.append(part)
        else:
            parts.append(json.dumps(part)[:130])
    return ".".join(parts)


def needs_check(raw: bytes) -> bool:
    """Whether :func:`loads` must look at ``raw`` (UTF-8 JSON that a parser accepted, with the
    nesting depth bounded by the schema it was validated against): ``False`` means every
    number is a short, finite literal and no string holds ``\\u0000``. Lone surrogates are
    not looked for: pydantic's parser refuses them."""
    if b"NaN" in raw or b"Infinity" in raw or b"\\u0000" in raw:
        return True
    if _LONG_RUN in raw.translate(_NUMBER_CHARS):
        return True
    exponents = raw.translate(_EXPONENT_CHARS)
    return b"deddd" in exponents or b"desddd" in exponents


def _too_deep(raw: bytes, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than ``max_depth`` in ``raw`` (strings skipped;
    scans at C speed, no recursion, whatever the depth)."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # cannot be deeper than its openers (quick accept for small bodies)
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth


class _Refused:
    """Placeholder the parser hooks put where a value is refused; found by the walk."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _number(literal: str, max_chars: int) -> Any:
    if len(literal) > max_chars:
        return _Refused(f"number literal longer than {max_chars} characters")
    if any(c in literal for c in ".eE"):
        value = float(literal)
        if not math.isfinite(value):
            return _Refused(f"number {literal} is out of the finite range (RFC 8259 §6)")
        return value
    return int(literal)


def _constant(name: str) -> Any:
    return _Refused(f"{name} is not a JSON number (RFC 8259 §6)")


def _string_fault(text: str) -> str | None:
    if "\x00" in text:
        return "U+0000 (NUL) is not allowed in strings"
    if _SURROGATE.search(text) is not None:
        return "unpaired UTF-16 surrogate in a string (RFC 8259 §8.2)"
    return None


def _walk(value: Any, path: JsonPath) -> Iterator[JsonRefusedError]:
    # depth is bounded by MAX_DEPTH before parsing, so recursion is bounded too
    if isinstance(value, _Refused):
        yield JsonRefusedError(path, value.reason)
    elif isinstance(value, str):
        fault = _string_fault(value)
        if fault is not None:
            yield JsonRefusedError(path, fault)
    elif isinstance(value, dict):
        for key, item in value.items():
            fault = _string_fault(key)
            if fault is not None:
                yield JsonRefusedError((*path, key), f"property name: {fault}")
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def loads(
    raw: bytes | str, *, max_depth: int = MAX_DEPTH, max_number_chars: int = MAX_NUMBER_CHARS
) -> Any:
    """``raw`` parsed as strict JSON (see the module docstring).

    Raises
    ------
    JsonRefusedError
        Not UTF-8, not JSON, too deep (path ``()``), or a refused value (its path: the first
        one in document order).
    """
    if isinstance(raw, str):
        data = raw.encode("utf-8", "surrogatepass")
    else:
        data = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise JsonRefusedError((), f"not UTF-8 (RFC 8259 §8.1): {err.reason}") from None
    if _too_deep(data, max_depth):
        raise JsonRefusedError((), f"arrays and objects nested deeper than {max_depth} levels")
    refused: list[_Refused] = []

    def number(literal: str) -> Any:
        value = _number(literal, max_number_chars)
        if isinstance(value, _Refused):
            refused.append(value)
        return value

    def constant(name: str) -> Any:
        value = _constant(name)
        refused.append(value)
        return value

    # the number hooks cost a Python call per number: only for bodies that may need them
    hooks: dict[str, Any] = (
        {"parse_constant": constant, "parse_int": number, "parse_float": number}
        if needs_check(data) or max_number_chars < MAX_NUMBER_CHARS
        else {}
    )
    try:
        value = json.loads(text, **hooks)
    except json.JSONDecodeError as err:
        raise JsonRefusedError((), f"not valid JSON ({err})") from None
    # the walk (paths for the answer) only when something is refused or a string may be
    if refused or _ESCAPED_FAULT.search(data) is not None:
        for fault in _walk(value, ()):
            raise fault
    return value
