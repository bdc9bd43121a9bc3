"""Generic EDT ↔ Python value codec driven by the MRA data schema — no per-EPC code (C1).

Serves C1 (machine-readable communication home gateway ↔ device): the device validates every
Set against the published schema, the controller decodes every Get/INF with it.

``decode_value(spec, edt)``, ``encode_value(spec, value)`` and ``validate_edt(spec, edt)``
walk ``spec.data`` (a ``$ref``-resolved MRA schema, see :mod:`drready.echonet.mra`). Every
failure raises :class:`~drready.echonet.errors.PropertyValueError` naming the EPC.

Schema types supported (every ``"type"`` occurring in ``definitions.json`` and the five bundled
class files, plus ``oneOf``):

==============  =============================================================================
type            EDT ↔ Python
==============  =============================================================================
number          big-endian ``int8/uint8/int16/uint16/int32/uint32``; ``minimum``/``maximum``
                (or an ``enum`` of allowed numbers) bound the *wire* value; ``multiple``
                (alias ``multipleOf``, which the MRA also uses as a scale) gives the physical
                value: ``int`` without a multiple or with an integer one, else ``float``.
                ``overflowCode``/``underflowCode`` true: the ECHONET codes (unsigned
                0xFF…/0xFF…FE, signed 0x7F…/0x80…) decode to ``"overflow"``/``"underflow"``.
                ``coefficient`` (EPCs holding a further factor) is *not* applied: the caller
                multiplies by the values of those EPCs. ``unit`` only appears in messages.
state           ``size``-byte code → enum ``name`` (str). Encode takes the name, the int code,
                or a bool for the names ``"true"``/``"false"``. Range entries
                (``"0x000A...0x0013"``) decode to their name and encode to their first code.
numericValue    code → the enum's ``numericValue`` (int/float); encode takes that number.
level           ``base`` + ``maximum``: code ``base + n − 1`` ↔ level ``n`` (1…maximum), width
                = width of ``base``; without ``base``: ``minimum``…``maximum`` as is (1 byte).
bitmap          ``size`` bytes, big-endian; ``position.index`` counts bytes from the *least*
                significant (last) byte, ``bitMask`` selects the bits → dict name → ``bool``
                (single-bit field) or ``int``; fields whose ``value`` is a state are checked
                against its codes. Encode takes the same dict (or state names per field).
time            size 1 ``"HH"``, 2 ``"HH:MM"``, 3 ``"HH:MM:SS"``; hour ≤ ``maximumOfHour``
                (default 23). Encode also takes :class:`datetime.time`.
date            size 4 (default) ``"YYYY-MM-DD"`` (year 2 bytes), 3 ``"YYYY-MM"``, 2
                ``"YYYY"``. Encode also takes :class:`datetime.date`.
date-time       size 7 (default) ``"YYYY-MM-DDTHH:MM:SS"``, 6 ``"YYYY-MM-DDTHH:MM"``, 5
                ``"YYYY-MM-DDTHH"``. Encode also takes :class:`datetime.datetime`.
raw             ``bytes`` of ``minSize``…``maxSize``.
object          consecutive elements → dict ``shortName`` → value; at most one element may
                have a variable size (it gets the bytes the others leave).
array           ``itemSize``-byte items, ``minItems``…``maxItems`` → list.
oneOf           alternatives tried in order, first fit wins (e.g. 0xFFFFFFFE → ``"noData"``).
==============  =============================================================================

Anything else (an unknown ``type`` or number ``format``): ``decode_value`` returns the EDT as a
lower-case hex string, ``validate_edt`` accepts any EDT, and ``encode_value`` takes ``bytes``
or a hex string and passes it through. ``readOnly`` on state entries is not enforced.

References
----------
ECHONET Consortium, "Machine Readable Appendix" V1.3.0, Release R (data type definitions in
``definitions.json``); ECHONET Lite Specification Part II, Appendix 1 (overflow and underflow
codes). Bitmap byte order as decoded by pychonet for 0x026B 0xC2 (``int.from_bytes(edt,
"big") & 0b001`` = out of hot water).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from drready.domain.tolerances import ROUNDOFF
from drready.echonet.errors import PropertyValueError
from drready.echonet.mra import PropertySpec

__all__ = ["decode_value", "encode_value", "validate_edt"]

_FORMATS: dict[str, tuple[int, bool]] = {
    "int8": (1, True),
    "uint8": (1, False),
    "int16": (2, True),
    "uint16": (2, False),
    "int32": (4, True),
    "uint32": (4, False),
}

_STEP_TOL = 1e-6
"""A value this close to a whole number of the property's steps [steps] is that number: the
float round-off of value / step, never a real difference (the EDT counts whole steps)."""
_TIME_SIZES = {1: "%H", 2: "%H:%M", 3: "%H:%M:%S"}
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")
_DATETIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2})(?::(\d{2}))?(?::(\d{2}))?$")


class _InvalidError(Exception):
    """Internal: the bytes or value do not fit the schema (message without the EPC)."""


class _UnsupportedError(Exception):
    """Internal: the schema uses a construct this codec does not know."""


# --------------------------------------------------------------------------- helpers


def _hex_width(code: str) -> int:
    """Byte width of a hex literal such as ``"0x00FF"`` (2)."""
    return max(1, (len(code) - 2 + 1) // 2)


def _code_range(code: str) -> tuple[int, int]:
    """``"0x41"`` → (0x41, 0x41); ``"0x000a...0x0013"`` → (0x0A, 0x13)."""
    if "..." in code:
        lo, hi = code.split("...", 1)
        return int(lo, 16), int(hi, 16)
    value = int(code, 16)
    return value, value


def _fmt_num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _multiple(schema: Mapping[str, Any]) -> int | float | None:
    mult = schema.get("multiple", schema.get("multipleOf"))
    if mult is None or mult == 1:
        return None
    if not isinstance(mult, int | float) or isinstance(mult, bool) or mult <= 0:
        raise _UnsupportedError(f"multiple {mult!r}")
    return mult


def _to_physical(raw: int, mult: int | float | None) -> int | float:
    if mult is None:
        return raw
    if isinstance(mult, int):
        return raw * mult
    divisor = round(1 / mult)
    if divisor and math.isclose(1 / mult, divisor, rel_tol=ROUNDOFF):
        return raw / divisor  # exact decimal: 3 / 10 == 0.3, unlike 3 * 0.1
    return raw * mult


def _to_raw(value: Any, mult: int | float | None, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _InvalidError(f"expected a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _InvalidError(f"{value!r} is not a finite number")
    if mult is None:
        if isinstance(value, float) and not value.is_integer():
            raise _InvalidError(f"{_fmt_num(value)} is not a whole number{unit}")
        return int(value)
    if isinstance(mult, float):
        divisor = round(1 / mult)
        exact = (
            value * divisor if math.isclose(1 / mult, divisor, rel_tol=ROUNDOFF) else value / mult
        )
    else:
        exact = value / mult
    raw = round(exact)
    if not math.isclose(exact, raw, rel_tol=ROUNDOFF, abs_tol=_STEP_TOL):
        raise _InvalidError(f"{_fmt_num(value)} is not a multiple of {_fmt_num(mult)}{unit}")
    return int(raw)


def _special_codes(schema: Mapping[str, Any], size: int, signed: bool) -> dict[int, str]:
    """Overflow/underflow codes of a number whose schema enables them (Part II, Appendix 1)."""
    codes: dict[int, str] = {}
    bits = 8 * size
    if schema.get("overflowCode") is True:
        codes[(1 << (bits - 1)) - 1 if signed else (1 << bits) - 1] = "overflow"
    if schema.get("underflowCode") is True:
        codes[-(1 << (bits - 1)) if signed else (1 << bits) - 2] = "underflow"
    return codes


def _number_parts(schema: Mapping[str, Any]) -> tuple[int, bool]:
    fmt = schema.get("format")
    if fmt not in _FORMATS:
        raise _UnsupportedError(f"number format {fmt!r}")
    return _FORMATS[fmt]


def _fixed_size(schema: Mapping[str, Any]) -> int | None:
    """Wire size of ``schema`` if it is fixed, else ``None`` (variable)."""
    if "oneOf" in schema:
        sizes = {_fixed_size(alt) for alt in schema["oneOf"]}
        return sizes.pop() if len(sizes) == 1 else None
    kind = schema.get("type")
    if kind == "number":
        return _number_parts(schema)[0]
    if kind in ("state", "numericValue"):
        return int(schema.get("size", 1))
    if kind == "level":
        return _hex_width(schema["base"]) if "base" in schema else 1
    if kind == "bitmap":
        return int(schema["size"])
    if kind == "time":
        return int(schema.get("size", 2))
    if kind == "date":
        return int(schema.get("size", 4))
    if kind == "date-time":
        return int(schema.get("size", 7))
    if kind == "raw":
        lo, hi = schema.get("minSize"), schema.get("maxSize")
        return int(lo) if lo is not None and lo == hi else None
    if kind == "object":
        total = 0
        for element in schema["properties"]:
            size = _fixed_size(element["element"])
            if size is None:
                return None
            total += size
        return total
    if kind == "array":
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        return int(schema["itemSize"]) * int(lo) if lo == hi else None
    raise _UnsupportedError(f"type {kind!r}")


def _check_size(b: bytes, size: int, what: str) -> None:
    if len(b) != size:
        raise _InvalidError(f"{what} needs {size} bytes, got {len(b)}")


# --------------------------------------------------------------------------- decode


def _decode(schema: Mapping[str, Any], b: bytes) -> Any:
    if "oneOf" in schema:
        reasons = []
        for alt in schema["oneOf"]:
            try:
                return _decode(alt, b)
            except _InvalidError as err:
                reasons.append(str(err))
        raise _InvalidError(" / ".join(reasons))
    kind = schema.get("type")
    if kind == "number":
        return _decode_number(schema, b)
    if kind == "state":
        size = int(schema.get("size", 1))
        _check_size(b, size, "state")
        code = int.from_bytes(b, "big")
        for entry in schema["enum"]:
            lo, hi = _code_range(entry["edt"])
            if lo <= code <= hi:
                return entry["name"]
        raise _InvalidError(f"0x{b.hex().upper()} is not one of the states {_state_names(schema)}")
    if kind == "numericValue":
        _check_size(b, int(schema.get("size", 1)), "numericValue")
        code = int.from_bytes(b, "big")
        for entry in schema["enum"]:
            if int(entry["edt"], 16) == code:
                return entry["numericValue"]
        raise _InvalidError(f"0x{b.hex().upper()} is not a listed code")
    if kind == "level":
        return _decode_level(schema, b)
    if kind == "bitmap":
        return _decode_bitmap(schema, b)
    if kind == "time":
        return _decode_time(schema, b)
    if kind == "date":
        return _decode_date(schema, b)
    if kind == "date-time":
        return _decode_datetime(schema, b)
    if kind == "raw":
        lo, hi = int(schema.get("minSize", 0)), int(schema.get("maxSize", 255))
        if not lo <= len(b) <= hi:
            raise _InvalidError(f"raw data needs {lo}–{hi} bytes, got {len(b)}")
        return bytes(b)
    if kind == "object":
        return _decode_object(schema, b)
    if kind == "array":
        return _decode_array(schema, b)
    raise _UnsupportedError(f"type {kind!r}")


def _state_names(schema: Mapping[str, Any]) -> str:
    return ", ".join(f"{e['name']} ({e['edt']})" for e in schema["enum"])


def _range_text(schema: Mapping[str, Any], mult: int | float | None) -> str:
    unit = f" {schema['unit']}" if "unit" in schema else ""
    if "enum" in schema:
        allowed = ", ".join(_fmt_num(_to_physical(v, mult)) for v in schema["enum"])
        return f"not one of {allowed}{unit}"
    lo = _fmt_num(_to_physical(schema["minimum"], mult)) if "minimum" in schema else "−∞"
    hi = _fmt_num(_to_physical(schema["maximum"], mult)) if "maximum" in schema else "∞"
    return f"outside {lo}–{hi}{unit}"


def _raw_allowed(schema: Mapping[str, Any], raw: int) -> bool:
    if "enum" in schema:
        return raw in schema["enum"]
    lo, hi = schema.get("minimum"), schema.get("maximum")
    return (lo is None or raw >= lo) and (hi is None or raw <= hi)


def _decode_number(schema: Mapping[str, Any], b: bytes) -> int | float | str:
    size, signed = _number_parts(schema)
    _check_size(b, size, f"{schema['format']} number")
    raw = int.from_bytes(b, "big", signed=signed)
    special = _special_codes(schema, size, signed)
    if raw in special:
        return special[raw]
    mult = _multiple(schema)
    if not _raw_allowed(schema, raw):
        raise _InvalidError(f"{_fmt_num(_to_physical(raw, mult))} is {_range_text(schema, mult)}")
    return _to_physical(raw, mult)


def _decode_level(schema: Mapping[str, Any], b: bytes) -> int:
    size = _fixed_size(schema) or 1
    _check_size(b, size, "level")
    code = int.from_bytes(b, "big")
    if "base" in schema:
        level = code - int(schema["base"], 16) + 1
        lo, hi = 1, int(schema["maximum"])
    else:
        level = code
        lo, hi = int(schema.get("minimum", 0)), int(schema["maximum"])
    if not lo <= level <= hi:
        raise _InvalidError(f"code 0x{b.hex().upper()} is level {level}, outside {lo}–{hi}")
    return level


def _bit_field(entry: Mapping[str, Any], size: int) -> tuple[int, int, int]:
    """(byte shift, mask within the byte, bit shift) of a bitmap field."""
    index = int(entry["position"]["index"])
    mask = int(entry["position"]["bitMask"], 2)
    if not 0 <= index < size or not 0 < mask <= 0xFF:
        raise _UnsupportedError(f"bitmap position {entry['position']!r}")
    shift = (mask & -mask).bit_length() - 1
    return 8 * index, mask, shift


def _decode_bitmap(schema: Mapping[str, Any], b: bytes) -> dict[str, int | bool]:
    size = int(schema["size"])
    _check_size(b, size, "bitmap")
    word = int.from_bytes(b, "big")
    out: dict[str, int | bool] = {}
    for entry in schema["bitmaps"]:
        byte_shift, mask, shift = _bit_field(entry, size)
        field = ((word >> byte_shift) & mask) >> shift
        value_schema = entry.get("value", {})
        if value_schema.get("type") == "state" and "enum" in value_schema:
            codes = [_code_range(e["edt"]) for e in value_schema["enum"]]
            if not any(lo <= field <= hi for lo, hi in codes):
                raise _InvalidError(f"bitmap field {entry['name']} = {field} is not a listed state")
        out[entry["name"]] = bool(field) if mask >> shift == 1 else field
    return out


def _decode_time(schema: Mapping[str, Any], b: bytes) -> str:
    size = int(schema.get("size", 2))
    if size not in _TIME_SIZES:
        raise _UnsupportedError(f"time of size {size}")
    _check_size(b, size, "time")
    max_hour = int(schema.get("maximumOfHour", 23))
    if b[0] > max_hour:
        raise _InvalidError(f"hour {b[0]} is outside 0–{max_hour}")
    for part in b[1:]:
        if part > 59:
            raise _InvalidError(f"minute/second {part} is outside 0–59")
    return ":".join(f"{part:02d}" for part in b)


def _decode_date(schema: Mapping[str, Any], b: bytes) -> str:
    size = int(schema.get("size", 4))
    if size not in (2, 3, 4):
        raise _UnsupportedError(f"date of size {size}")
    _check_size(b, size, "date")
    year = int.from_bytes(b[:2], "big")
    parts = [year, *b[2:]]
    _check_date(parts)
    return "-".join(f"{p:04d}" if i == 0 else f"{p:02d}" for i, p in enumerate(parts))


def _check_date(parts: Sequence[int]) -> None:
    year = parts[0]
    month = parts[1] if len(parts) > 1 else 1
    day = parts[2] if len(parts) > 2 else 1
    if year < 1:
        raise _InvalidError(f"year {year} is outside 1–65535")
    try:
        dt.date(year, month, day)
    except ValueError as err:
        raise _InvalidError(f"invalid date {year:04d}-{month:02d}-{day:02d}: {err}") from err


def _decode_datetime(schema: Mapping[str, Any], b: bytes) -> str:
    size = int(schema.get("size", 7))
    if size not in (5, 6, 7):
        raise _UnsupportedError(f"date-time of size {size}")
    _check_size(b, size, "date-time")
    year = int.from_bytes(b[:2], "big")
    _check_date([year, b[2], b[3]])
    if b[4] > 23:
        raise _InvalidError(f"hour {b[4]} is outside 0–23")
    for part in b[5:]:
        if part > 59:
            raise _InvalidError(f"minute/second {part} is outside 0–59")
    text = f"{year:04d}-{b[2]:02d}-{b[3]:02d}T{b[4]:02d}"
    return text + "".join(f":{part:02d}" for part in b[5:])


def _element_sizes(schema: Mapping[str, Any], total: int) -> list[int]:
    elements = schema["properties"]
    sizes = [_fixed_size(e["element"]) for e in elements]
    variable = [i for i, s in enumerate(sizes) if s is None]
    if len(variable) > 1:
        raise _UnsupportedError("object with more than one variable-size element")
    fixed = sum(s for s in sizes if s is not None)
    if variable:
        rest = total - fixed
        if rest < 0:
            raise _InvalidError(f"object needs at least {fixed} bytes, got {total}")
        sizes[variable[0]] = rest
    elif fixed != total:
        raise _InvalidError(f"object needs {fixed} bytes, got {total}")
    return [int(s) for s in sizes if s is not None]


def _decode_object(schema: Mapping[str, Any], b: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pos = 0
    for element, size in zip(schema["properties"], _element_sizes(schema, len(b)), strict=True):
        name = element["shortName"]
        try:
            out[name] = _decode(element["element"], b[pos : pos + size])
        except _InvalidError as err:
            raise _InvalidError(f"{name}: {err}") from err
        pos += size
    return out


def _decode_array(schema: Mapping[str, Any], b: bytes) -> list[Any]:
    item_size = int(schema["itemSize"])
    lo, hi = int(schema.get("minItems", 0)), schema.get("maxItems")
    if item_size <= 0:
        raise _UnsupportedError(f"array itemSize {item_size}")
    if len(b) % item_size:
        raise _InvalidError(f"array of {item_size}-byte items cannot be {len(b)} bytes long")
    count = len(b) // item_size
    if count < lo or (hi is not None and count > int(hi)):
        raise _InvalidError(f"array has {count} items, allowed {lo}–{hi}")
    items = []
    for i in range(count):
        try:
            items.append(_decode(schema["items"], b[i * item_size : (i + 1) * item_size]))
        except _InvalidError as err:
            raise _InvalidError(f"item {i}: {err}") from err
    return items


# --------------------------------------------------------------------------- encode


def _encode(schema: Mapping[str, Any], value: Any) -> bytes:
    if "oneOf" in schema:
        reasons = []
        for alt in schema["oneOf"]:
            try:
                return _encode(alt, value)
            except _InvalidError as err:
                reasons.append(str(err))
        raise _InvalidError(" / ".join(reasons))
    kind = schema.get("type")
    if kind == "number":
        return _encode_number(schema, value)
    if kind == "state":
        return _encode_state(schema, value)
    if kind == "numericValue":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _InvalidError(f"expected a number, got {value!r}")
        for entry in schema["enum"]:
            if math.isclose(entry["numericValue"], value, rel_tol=ROUNDOFF):
                return int(entry["edt"], 16).to_bytes(int(schema.get("size", 1)), "big")
        listed = ", ".join(_fmt_num(e["numericValue"]) for e in schema["enum"])
        raise _InvalidError(f"{_fmt_num(value)} is not one of {listed}")
    if kind == "level":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _InvalidError(f"expected a level number, got {value!r}")
        size = _fixed_size(schema) or 1
        code = int(schema["base"], 16) + value - 1 if "base" in schema else value
        if not 0 <= code < 1 << (8 * size):
            raise _InvalidError(f"level {value} is out of range")
        return code.to_bytes(size, "big")
    if kind == "bitmap":
        return _encode_bitmap(schema, value)
    if kind == "time":
        return _encode_time(schema, value)
    if kind == "date":
        return _encode_date(schema, value)
    if kind == "date-time":
        return _encode_datetime(schema, value)
    if kind == "raw":
        if not isinstance(value, bytes | bytearray):
            raise _InvalidError(f"expected bytes, got {value!r}")
        return bytes(value)
    if kind == "object":
        if not isinstance(value, Mapping):
            raise _InvalidError(f"expected a dict of elements, got {value!r}")
        out = bytearray()
        for element in schema["properties"]:
            name = element["shortName"]
            if name not in value:
                raise _InvalidError(f"element {name} is missing")
            try:
                out += _encode(element["element"], value[name])
            except _InvalidError as err:
                raise _InvalidError(f"{name}: {err}") from err
        extra = set(value) - {e["shortName"] for e in schema["properties"]}
        if extra:
            raise _InvalidError(f"unknown elements {sorted(extra)}")
        return bytes(out)
    if kind == "array":
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise _InvalidError(f"expected a list, got {value!r}")
        out = bytearray()
        for i, item in enumerate(value):
            try:
                chunk = _encode(schema["items"], item)
            except _InvalidError as err:
                raise _InvalidError(f"item {i}: {err}") from err
            _check_size(chunk, int(schema["itemSize"]), f"item {i}")
            out += chunk
        return bytes(out)
    raise _UnsupportedError(f"type {kind!r}")


def _encode_number(schema: Mapping[str, Any], value: Any) -> bytes:
    size, signed = _number_parts(schema)
    if isinstance(value, str):
        for code, name in _special_codes(schema, size, signed).items():
            if value == name:
                return code.to_bytes(size, "big", signed=signed)
        raise _InvalidError(f"expected a number, got {value!r}")
    mult = _multiple(schema)
    unit = f" {schema['unit']}" if "unit" in schema else ""
    raw = _to_raw(value, mult, unit)
    if not _raw_allowed(schema, raw):
        raise _InvalidError(f"{_fmt_num(value)} is {_range_text(schema, mult)}")
    try:
        return raw.to_bytes(size, "big", signed=signed)
    except OverflowError as err:
        raise _InvalidError(f"{_fmt_num(value)} does not fit {schema['format']}") from err


def _encode_state(schema: Mapping[str, Any], value: Any) -> bytes:
    size = int(schema.get("size", 1))
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, str):
        for entry in schema["enum"]:
            if entry["name"] == value:
                return _code_range(entry["edt"])[0].to_bytes(size, "big")
        raise _InvalidError(f"{value!r} is not one of the states {_state_names(schema)}")
    if isinstance(value, int):
        for entry in schema["enum"]:
            lo, hi = _code_range(entry["edt"])
            if lo <= value <= hi:
                return value.to_bytes(size, "big")
        raise _InvalidError(f"code {value:#x} is not one of the states {_state_names(schema)}")
    raise _InvalidError(f"expected a state name or code, got {value!r}")


def _encode_bitmap(schema: Mapping[str, Any], value: Any) -> bytes:
    if not isinstance(value, Mapping):
        raise _InvalidError(f"expected a dict of bitmap fields, got {value!r}")
    size = int(schema["size"])
    word = 0
    names = set()
    for entry in schema["bitmaps"]:
        name = entry["name"]
        names.add(name)
        if name not in value:
            raise _InvalidError(f"bitmap field {name} is missing")
        field = value[name]
        value_schema = entry.get("value", {})
        if isinstance(field, str) and value_schema.get("type") == "state":
            field = int.from_bytes(_encode_state({**value_schema, "size": 1}, field), "big")
        if not isinstance(field, int):
            raise _InvalidError(f"bitmap field {name}: expected an int or bool, got {field!r}")
        byte_shift, mask, shift = _bit_field(entry, size)
        field = int(field)
        if field < 0 or (field << shift) & ~mask:
            raise _InvalidError(f"bitmap field {name} = {field} does not fit mask {mask:#010b}")
        word |= (field << shift) << byte_shift
    extra = set(value) - names
    if extra:
        raise _InvalidError(f"unknown bitmap fields {sorted(extra)}")
    return word.to_bytes(size, "big")


def _encode_time(schema: Mapping[str, Any], value: Any) -> bytes:
    size = int(schema.get("size", 2))
    if size not in _TIME_SIZES:
        raise _UnsupportedError(f"time of size {size}")
    if isinstance(value, dt.time):
        parts = [value.hour, value.minute, value.second][:size]
    elif isinstance(value, str) and re.fullmatch(r"\d{1,3}(:\d{2}){0,2}", value):
        parts = [int(p) for p in value.split(":")]
    else:
        raise _InvalidError(f"expected a time 'HH:MM', got {value!r}")
    if len(parts) != size:
        raise _InvalidError(f"time {value!r} needs {size} parts ({_TIME_SIZES[size]})")
    if any(p > 0xFF for p in parts):
        raise _InvalidError(f"time {value!r} is out of range")
    return bytes(parts)


def _encode_date(schema: Mapping[str, Any], value: Any) -> bytes:
    size = int(schema.get("size", 4))
    if size not in (2, 3, 4):
        raise _UnsupportedError(f"date of size {size}")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        parts = [value.year, value.month, value.day]
    elif isinstance(value, str) and (match := _DATE_RE.fullmatch(value)):
        parts = [int(p) for p in match.groups() if p is not None]
    else:
        raise _InvalidError(f"expected a date 'YYYY-MM-DD', got {value!r}")
    parts = parts[: size - 1]
    if len(parts) != size - 1:
        raise _InvalidError(f"date {value!r} has too few parts for {size} bytes")
    if any(p > 0xFF for p in parts[1:]):
        raise _InvalidError(f"date {value!r} is out of range")
    return parts[0].to_bytes(2, "big") + bytes(parts[1:])


def _encode_datetime(schema: Mapping[str, Any], value: Any) -> bytes:
    size = int(schema.get("size", 7))
    if size not in (5, 6, 7):
        raise _UnsupportedError(f"date-time of size {size}")
    if isinstance(value, dt.datetime):
        parts = [value.year, value.month, value.day, value.hour, value.minute, value.second]
    elif isinstance(value, str) and (match := _DATETIME_RE.fullmatch(value)):
        parts = [int(p) for p in match.groups() if p is not None]
    else:
        raise _InvalidError(f"expected a date-time 'YYYY-MM-DDTHH:MM:SS', got {value!r}")
    parts = parts[: size - 1]
    if len(parts) != size - 1:
        raise _InvalidError(f"date-time {value!r} has too few parts for {size} bytes")
    if any(p > 0xFF for p in parts[1:]):
        raise _InvalidError(f"date-time {value!r} is out of range")
    return parts[0].to_bytes(2, "big") + bytes(parts[1:])


# --------------------------------------------------------------------------- public API


def decode_value(spec: PropertySpec, edt: bytes) -> Any:
    """Decode ``edt`` of property ``spec`` to its Python value (see the module table).

    >>> from drready.echonet.mra import class_spec
    >>> decode_value(class_spec(0x026B).properties[0xE1], bytes.fromhex("015E"))
    350
    """
    try:
        return _decode(spec.data, bytes(edt))
    except _InvalidError as err:
        raise PropertyValueError(spec.epc, str(err)) from err
    except _UnsupportedError:
        return bytes(edt).hex()


def validate_edt(spec: PropertySpec, edt: bytes) -> None:
    """Raise :class:`PropertyValueError` unless ``edt`` is a valid value of ``spec``'s schema.

    EDTs of schemas this codec does not understand are accepted (see the module docstring).
    """
    decode_value(spec, edt)


def encode_value(spec: PropertySpec, value: Any) -> bytes:
    """Encode ``value`` to the EDT of property ``spec``; the result is validated again.

    >>> from drready.echonet.mra import class_spec
    >>> encode_value(class_spec(0x026B).properties[0xCA], "at1300").hex()
    '0d'
    """
    try:
        edt = _encode(spec.data, value)
    except _InvalidError as err:
        raise PropertyValueError(spec.epc, str(err)) from err
    except _UnsupportedError:
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, str):
            try:
                return bytes.fromhex(value)
            except ValueError as err:
                raise PropertyValueError(spec.epc, f"expected bytes or hex, got {value!r}") from err
        raise PropertyValueError(spec.epc, f"expected bytes or hex, got {value!r}") from None
    if len(edt) > 0xFF:
        raise PropertyValueError(spec.epc, f"EDT of {len(edt)} bytes exceeds 255")
    validate_edt(spec, edt)
    return edt
