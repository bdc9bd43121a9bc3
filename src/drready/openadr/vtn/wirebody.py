"""Request bodies of the VTN: strict JSON, unknown properties ignored (or refused), errors
named by wire field (C1: interoperable with the OpenADR 3 clients in the wild; S1: hostile
input answered 400, never 5xx).

:func:`parse_body` is the whole rule, without I/O (the HTTP side is
:func:`drready.openadr.vtn.deps.parse_wire_body`):

1. **Strict JSON** (:mod:`drready.security.strict_json`): UTF-8, no ``NaN``/``Infinity``,
   finite numbers of at most 100 characters, nesting at most 32 deep, no U+0000 or unpaired
   surrogates in strings. A refusal names the place: ``resources.0.intervals.0.payloads.0.
   values.0: NaN is not a JSON number (RFC 8259 §6)``.
2. **Unknown properties** (Definition.md "Required and optional properties": a VTN may ignore
   what it does not know, so 3.0-era clients sending ``programID`` on a report still work):
   by default each is dropped before validation, none is stored, and the caller logs one line
   naming them (:attr:`ParsedBody.ignored`); with ``strict=True`` (``VtnSettings.strict_input``)
   they are refused with 400 as before.
3. **Errors name the wire field**: pydantic's locations carry the names of union members
   (``VEN_VEN_REQUEST``, ``Point``, ``int``) that are not on the wire, and a missing
   discriminator is reported under the Python name (``object_type``); :func:`describe_errors`
   maps every location onto the body that was sent (``objectType``, ``values.0``).

The common case stays one pydantic pass over the raw bytes (its parser is Rust): a body that
validates and in which :func:`~drready.security.strict_json.needs_check` finds nothing that
strict JSON might refuse is the answer. Only bodies that fail, or that carry something
suspicious, are parsed again by :func:`~drready.security.strict_json.loads`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from drready.openadr.models import from_wire
from drready.security.strict_json import (
    JsonPath,
    JsonRefusedError,
    format_path,
    loads,
    needs_check,
)

__all__ = ["BodyError", "ParsedBody", "describe_errors", "parse_body", "wire_path"]

_BOM = b"\xef\xbb\xbf"
_MAX_ROUNDS = 4  # validate, drop what pydantic names as unknown, again (unions reveal late)
_QUOTED = re.compile(r"'([^']*)'")


class BodyError(ValueError):
    """A body refused with 400; ``detail`` is the answer's ``detail``."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class ParsedBody:
    """A validated body and the unknown properties dropped from it (their wire paths)."""

    model: Any
    ignored: tuple[str, ...] = ()


def wire_path(data: Any, loc: Sequence[str | int], *, absent_last: bool = False) -> JsonPath:
    """A pydantic error location as a path in the body ``data`` that was sent.

    Segments that are not in ``data`` are pydantic's names of union members (``Point``,
    ``int``, ``VEN_VEN_REQUEST``) and are left out, except the last with ``absent_last`` (the
    name of a missing property).
    """
    node = data
    path: list[str | int] = []
    for i, segment in enumerate(loc):
        in_object = isinstance(node, dict) and isinstance(segment, str) and segment in node
        in_array = isinstance(node, list) and type(segment) is int and 0 <= segment < len(node)
        if in_object or in_array:
            path.append(segment)
            node = node[segment]
        elif absent_last and i == len(loc) - 1 and isinstance(segment, str):
            path.append(segment)
    return tuple(path)


def _discriminator(ctx: Mapping[str, Any]) -> str:
    # pydantic spells it "'object_type' | 'objectType'" (field name, then alias): the wire name
    # is the alias, i.e. the one that is not snake_case
    names: list[str] = _QUOTED.findall(str(ctx.get("discriminator", "")))
    wire = [n for n in names if "_" not in n]
    return (wire or names or ["objectType"])[-1]


def union_tags(cls: Any, field_name: str = "object_type") -> str:
    """The values a discriminated union ``cls`` takes at ``field_name``, as ``'A', 'B'``.

    pydantic names them for a wrong tag (``expected_tags``) but not for a missing one, so a body
    without ``objectType`` would be told "one of" and nothing (seen with a 3.0 client).
    """
    tags: list[str] = []
    for member in get_args(cls) or (cls,):
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(field_name)
            if field is not None and isinstance(field.default, str):
                tags.append(repr(field.default))
        elif get_args(member):
            nested = union_tags(member, field_name)
            if nested:
                tags.append(nested)
    return ", ".join(tags)


def describe_errors(errors: Sequence[Mapping[str, Any]], data: Any = None, cls: Any = None) -> str:
    """One ``<wire path>: <rule>`` per error, joined by ``; `` (each distinct line once).

    With ``data`` (the body as sent) the locations are mapped onto it (:func:`wire_path`);
    discriminator errors name the discriminator's wire name and the values it may take (from
    ``cls``, the model or union validated against, where pydantic does not say).
    """
    lines: list[str] = []
    for err in errors:
        kind = err.get("type")
        loc = tuple(err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if kind in ("union_tag_not_found", "union_tag_invalid"):
            ctx = err.get("ctx") or {}
            loc = (*loc, _discriminator(ctx))
            expected = ctx.get("expected_tags") or (
                union_tags(cls) if cls is not None and not err.get("loc") else ""
            )
            if kind == "union_tag_not_found":
                message = f"required, one of {expected}" if expected else "required"
            else:
                message = f"must be one of {expected}, got {ctx.get('tag')!r}"

            path = wire_path(data, loc, absent_last=True) if data is not None else loc
        elif data is not None:
            path = wire_path(data, loc, absent_last=kind == "missing")
        else:
            path = loc
        line = f"{format_path(path)}: {message}"
        if line not in lines:
            lines.append(line)
    return "; ".join(lines)


def _drop(data: Any, loc: Sequence[str | int]) -> JsonPath | None:
    """Remove the unknown property at pydantic location ``loc`` from ``data``; its path."""
    path = wire_path(data, loc)
    if not path or not isinstance(path[-1], str) or path[-1] != loc[-1]:
        return None
    node = data
    for segment in path[:-1]:
        node = node[segment]
    if not isinstance(node, dict):
        return None
    del node[path[-1]]
    return path


def _strict(raw: bytes) -> Any:
    try:
        return loads(raw)
    except JsonRefusedError as err:
        raise BodyError(str(err)) from None


def parse_body(cls: Any, raw: bytes, *, strict: bool = False) -> ParsedBody:
    """``raw`` (a request body) validated into ``cls`` with wire semantics (see the module).

    Raises
    ------
    BodyError
        Not strict JSON, not an object, or not a valid ``cls`` (unknown properties too, with
        ``strict``); the detail names the wire field.
    """
    # A plain UTF-8 body (no BOM, no NUL byte) is validated as the text it is; when that
    # succeeds and nothing in it may fail strict JSON, it is the answer. pydantic accepts no
    # JSON that strict JSON's parser refuses except what needs_check finds.
    if raw[:3] != _BOM and b"\x00" not in raw:
        try:
            model = from_wire(cls, raw, nulls_as_absent=True)  # liberal in what we accept
        except ValidationError:
            pass
        else:
            if needs_check(raw):
                _strict(raw)
            return ParsedBody(model)
    data = _strict(raw)
    if not isinstance(data, dict):
        raise BodyError("body: must be a JSON object")
    ignored: list[str] = []
    errors: list[Any] = []
    for _ in range(_MAX_ROUNDS):
        try:
            model = from_wire(cls, data, nulls_as_absent=True)
        except ValidationError as err:
            errors = err.errors()
            unknown = [e["loc"] for e in errors if e["type"] == "extra_forbidden"]
            dropped = [] if strict else [_drop(data, loc) for loc in unknown]
            if not unknown or strict or None in dropped:
                raise BodyError(describe_errors(errors, data, cls)) from None
            ignored += [format_path(path) for path in dropped if path is not None]
        else:
            return ParsedBody(model, tuple(ignored))
    raise BodyError(describe_errors(errors, data, cls))
