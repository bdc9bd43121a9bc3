"""The OpenADR 3.1.0 specification as data: OpenAPI document, JSON Schema validators, enumerations.

Serves C1 (machine-readable server-to-server route ii, DR servicer VTN ↔ maker cloud / home
gateway VENs) and D1 (one data model, checked against the published one): tests validate every
JSON body our VTN and VENs emit against the normative schemas, and :mod:`drready.openadr.models`
documents its enumerations from the same files. D6 (group management by servicer or maker) rests
on the ven/resource objects validated here.

The files ship in ``drready/data/openadr3`` (``openadr3.yaml`` and ``enumerations/*.yaml`` of the
OpenADR Alliance, Apache-2.0, see ``LICENSE``/``NOTICE`` there) and are read with
:mod:`importlib.resources`.

OpenAPI 3.0 → JSON Schema (draft 2020-12)
-----------------------------------------
* ``nullable: true`` → ``null`` added to ``type`` (and to ``enum``); a nullable ``$ref`` or
  composition is wrapped in ``anyOf: [..., {type: null}]``.
* Boolean ``exclusiveMaximum``/``exclusiveMinimum`` (draft 4 style) → the numeric draft 2020-12
  form.
* ``discriminator`` and ``example`` are dropped (annotations only; ``oneOf``/``anyOf`` decide).
* Formats are checked: ``date-time`` (RFC 3339 section 5.6, offset required), ``uri`` (RFC 3986
  absolute URI: a scheme, no white space), ``int32``; ``float`` is not range-checked.

Errata (applied unless ``errata=False``)
----------------------------------------
* ``ven`` and ``resource`` are ``allOf: [objectMetadata, BlVenRequest]`` (resp.
  ``BlResourceRequest``). ``objectMetadata.objectType`` must be one of ``objectTypes``
  (``VEN``, ``RESOURCE``, …) while ``BlVenRequest.objectType`` must be ``BL_VEN_REQUEST``: no
  instance satisfies both. The User Guide (Example 8.13-7) and the reference VTN return
  ``"objectType": "RESOURCE"``, so the request's discriminator is dropped from the second branch.
* ``notification.object`` is ``oneOf`` the six objects with ``discriminator: objectType`` but no
  ``mapping``, and the implicit mapping (schema names ``program``, …) never equals an
  ``objectType`` value (``PROGRAM``, …). Without the discriminator the ``oneOf`` is ambiguous: a
  subscription with a ``programID`` is also a valid ``event`` (which needs only ``programID``), so
  its notification fails. Each branch is therefore pinned to its ``objectType``, which is what the
  discriminator means.

References
----------
OpenADR Alliance, "OpenADR 3.1.0 Specification": ``openadr3.yaml``, ``Definition.md``,
``User_Guide.md``, ``enumerations/``.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from importlib.resources import files
from typing import Any

import yaml  # type: ignore[import-untyped]

from drready.openadr.models import is_rfc3339_date_time, is_uri

__all__ = [
    "ENUMERATION_NAMES",
    "enumeration",
    "enumeration_document",
    "schema_names",
    "schema_validator",
    "spec_document",
    "validate",
]

#: The enumeration files in ``enumerations/`` (stem of ``<name>.schema.yaml``).
ENUMERATION_NAMES: tuple[str, ...] = (
    "event-interval-payloads",
    "report-payloads",
    "reading-types",
    "units",
    "program-attributes",
    "ven-resource-attributes",
)

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _data_dir() -> Any:
    return files("drready") / "data" / "openadr3"


@cache
def spec_document() -> dict[str, Any]:
    """The shipped ``openadr3.yaml`` (OpenAPI 3.0.0), parsed. Shared and cached: do not mutate."""
    text = (_data_dir() / "openadr3.yaml").read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def schema_names() -> tuple[str, ...]:
    """The names under ``components/schemas``, in document order."""
    return tuple(spec_document()["components"]["schemas"])


# --- OpenAPI 3.0 → JSON Schema ---------------------------------------------------------------

_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SUBSCHEMA_SINGLE = ("items", "not", "additionalProperties")
_DROPPED = ("discriminator", "example", "nullable")


def _convert(node: Any) -> Any:
    """One OpenAPI 3.0 Schema Object → a JSON Schema 2020-12 schema (a new object)."""
    if not isinstance(node, dict):
        return copy.deepcopy(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [_convert(sub) for sub in value]
        elif key in _SUBSCHEMA_SINGLE and isinstance(value, dict):
            out[key] = _convert(value)
        else:
            out[key] = copy.deepcopy(value)
    for bound, exclusive in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
        flag = out.get(exclusive)
        if isinstance(flag, bool):
            del out[exclusive]
            if flag and bound in out:
                out[exclusive] = out.pop(bound)
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            annotations: dict[str, Any] = {
                k: out.pop(k) for k in ("description", "default") if k in out
            }
            out = {"anyOf": [out, {"type": "null"}], **annotations}
    return out


def _without_discriminator(schema: dict[str, Any]) -> dict[str, Any]:
    fixed = copy.deepcopy(schema)
    fixed["properties"].pop("objectType", None)
    fixed["required"] = [name for name in fixed.get("required", []) if name != "objectType"]
    return fixed


@cache
def _json_schemas(errata: bool) -> dict[str, Any]:
    converted = {
        name: _convert(schema) for name, schema in spec_document()["components"]["schemas"].items()
    }
    if errata:
        for full, request in (("ven", "BlVenRequest"), ("resource", "BlResourceRequest")):
            ref = {"$ref": f"#/components/schemas/{request}"}
            converted[full]["allOf"] = [
                _without_discriminator(converted[request]) if branch == ref else branch
                for branch in converted[full]["allOf"]
            ]
        notified = converted["notification"]["properties"]["object"]
        notified["oneOf"] = [
            {
                "allOf": [
                    branch,
                    {"properties": {"objectType": {"const": name.upper()}}},
                ]
            }
            for branch in notified["oneOf"]
            for name in [branch["$ref"].rsplit("/", 1)[1]]
        ]
    return converted


def _format_checker() -> Any:
    from jsonschema import FormatChecker  # type: ignore[import-untyped]

    checker = FormatChecker(formats=())

    @checker.checks("date-time")  # type: ignore[untyped-decorator]
    def _date_time(instance: object) -> bool:
        return not isinstance(instance, str) or is_rfc3339_date_time(instance)

    @checker.checks("uri")  # type: ignore[untyped-decorator]
    def _uri(instance: object) -> bool:
        return not isinstance(instance, str) or is_uri(instance)

    @checker.checks("int32")  # type: ignore[untyped-decorator]
    def _int32(instance: object) -> bool:
        if isinstance(instance, bool) or not isinstance(instance, int):
            return True
        return _INT32_MIN <= instance <= _INT32_MAX

    return checker


@cache
def schema_validator(name: str, *, errata: bool = True) -> Any:
    """A ``jsonschema`` validator for ``#/components/schemas/<name>``.

    Parameters
    ----------
    name : str
        A key of ``components/schemas`` (e.g. ``"program"``, ``"eventRequest"``).
    errata : bool
        Apply the errata listed in the module docstring (default). ``False`` validates against
        the document as published.

    Returns
    -------
    jsonschema.protocols.Validator
        A ``Draft202012Validator`` whose ``$ref``s resolve inside the converted document and
        whose format checker covers ``date-time``, ``uri`` and ``int32``. Its ``validate(x)``
        raises :class:`jsonschema.ValidationError`.

    Raises
    ------
    KeyError
        ``name`` is not a schema of the document.
    jsonschema.SchemaError
        The converted schema is not valid JSON Schema (a conversion bug).
    """
    from jsonschema import Draft202012Validator

    schemas = _json_schemas(errata)
    if name not in schemas:
        raise KeyError(f"no schema {name!r} in components/schemas; known: {sorted(schemas)}")
    Draft202012Validator.check_schema(schemas[name])
    root = {
        "$schema": _DRAFT_2020_12,
        "$ref": f"#/components/schemas/{name}",
        "components": {"schemas": schemas},
    }
    return Draft202012Validator(root, format_checker=_format_checker())


def validate(name: str, instance: Any, *, errata: bool = True) -> None:
    """Validate a JSON-ready ``instance`` against ``components/schemas/<name>``.

    Raises
    ------
    jsonschema.ValidationError
        The best-matching violation (``.json_path`` says where).
    """
    schema_validator(name, errata=errata).validate(instance)


# --- enumerations ----------------------------------------------------------------------------


@cache
def enumeration_document(name: str) -> dict[str, Any]:
    """The parsed ``enumerations/<name>.schema.yaml``. Shared and cached: do not mutate.

    ``name`` is one of :data:`ENUMERATION_NAMES`. ``definitions`` files (payload types,
    attributes) hold one JSON Schema per ``type`` value, validating that type's ``values`` array.
    """
    if name not in ENUMERATION_NAMES:
        raise KeyError(f"no enumeration {name!r}; known: {list(ENUMERATION_NAMES)}")
    text = (_data_dir() / "enumerations" / f"{name}.schema.yaml").read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


_ENUM_VALUE = re.compile(r"^[A-Z0-9_]+$")


def enumeration(name: str) -> tuple[str, ...]:
    """The values an OpenADR enumeration defines, in file order.

    Parameters
    ----------
    name : str
        ``"event-interval-payloads"`` (event ``valuesMap.type`` / ``eventPayloadDescriptor``
        ``payloadType``), ``"report-payloads"``, ``"reading-types"``, ``"units"``,
        ``"program-attributes"`` or ``"ven-resource-attributes"``.

    Returns
    -------
    tuple of str
        The ``definitions`` keys, or the ``enum`` list for ``units`` and ``reading-types``.
        Private strings outside these lists are allowed by the spec (Definition.md, "Private
        Strings").
    """
    doc = enumeration_document(name)
    values = tuple(doc["definitions"]) if "definitions" in doc else tuple(doc["enum"])
    if not all(isinstance(v, str) and _ENUM_VALUE.match(v) for v in values):
        raise ValueError(f"enumeration {name!r} has a value that is not an UPPER_CASE string")
    return values
