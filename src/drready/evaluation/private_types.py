"""The private payload types of drready's OpenADR profile as JSON Schemas, and a check of a wire
body against the whole 3.1.0 specification (D1, C1; issue 17 items 2 and 3).

:data:`PRIVATE_TYPE_SCHEMAS` holds, for every private string of ``docs/profile-openadr3.md``
(``DRREADY_`` prefix, Definition.md "Private Strings"), a JSON Schema of the ``values`` array of
a ``valuesMap`` — the form of the specification's own ``enumerations/*.schema.yaml`` — with where
it appears and its unit. :func:`wire_problems` checks a body against the OpenAPI schema of
``openadr3.yaml`` and each ``valuesMap`` against its enumeration's per-type schema or, for a
private type, against the schema here; ``drready conformance openadr`` applies it to what the
VENs post (:mod:`drready.evaluation.conformance_openadr`).
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from drready.openadr import profile as pf
from drready.openadr.spec import enumeration_document, schema_validator

__all__ = ["PRIVATE_TYPE_SCHEMAS", "SCHEMA_BASE", "SCHEMA_DRAFT", "wire_problems"]

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://drready.example/schemas/"
"""Base of the ``$id`` of the private type schemas (an identifier, not a download location)."""


def _number(minimum: float | None, description: str, *, integer: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "integer" if integer else "number"}
    if minimum is not None:
        item["minimum"] = minimum
    return {
        "description": description,
        "type": "array",
        "minItems": 1,
        "maxItems": 1,
        "items": item,
    }


PRIVATE_TYPE_SCHEMAS: dict[str, dict[str, Any]] = {
    pf.UP_ENERGY: {
        **_number(
            0,
            "F1: up-DR potential of the whole window [KWH of electricity], at the "
            "confidence of the report's UP_REGULATION_AVAILABLE descriptor.",
        ),
        "x-drready": {"in": "report-payloads", "units": "KWH", "interval": "the window (id 0)"},
    },
    pf.DOWN_ENERGY: {
        **_number(0, "F1: down-DR potential of the whole window [KWH of electricity]."),
        "x-drready": {"in": "report-payloads", "units": "KWH", "interval": "the window (id 0)"},
    },
    pf.CUM_MIN: {
        **_number(
            0,
            "F1: least cumulative electricity from the window start to the end of "
            "this 30-minute slot over all safe plans [KWH]; non-decreasing.",
        ),
        "x-drready": {"in": "report-payloads", "units": "KWH", "interval": "each slot"},
    },
    pf.CUM_MAX: {
        **_number(
            0,
            "F1: most cumulative electricity from the window start to the end of "
            "this slot [KWH]; non-decreasing, ≥ DRREADY_CUMULATIVE_MIN.",
        ),
        "x-drready": {"in": "report-payloads", "units": "KWH", "interval": "each slot"},
    },
    pf.RESPONSE: {
        "description": "F2/F3: the unit's (or group's) answer to the DR event: status, the "
        "accepted energy [KWH], and the reason ('' when accepted as asked). Reason vocabulary: "
        "docs/profile-openadr3.md.",
        "type": "array",
        "minItems": 3,
        "maxItems": 3,
        "prefixItems": [
            {"enum": ["accepted", "partial", "rejected"]},
            {"type": "number", "minimum": 0},
            {"type": "string", "maxLength": 500},
        ],
        "items": False,
        "x-drready": {"in": "report-payloads", "units": "KWH", "interval": "the event's (id 0)"},
    },
    pf.STORED_HEAT: {
        **_number(
            0,
            "F4: expected stored heat above mains temperature at the end of this "
            "30-minute slot of the plan [KWH of heat]; 0 when not known (standard-only).",
        ),
        "x-drready": {"in": "report-payloads", "units": "KWH", "interval": "each plan slot"},
    },
    pf.UNIT_COUNT: {
        **_number(1, "F6/D6: the water heaters behind the resource (1 for a unit).", integer=True),
        "x-drready": {"in": "ven-resource-attributes"},
    },
    pf.ENERGY_SHIFT_ONLY: {
        "description": "F6: a standard-only unit behind a home gateway: up-DR only, as a whole "
        "4-hour shift starting at one of these local hours of its target day (ECHONET Lite "
        "0xCA/0xCD).",
        "type": "array",
        "minItems": 1,
        "maxItems": 4,
        "uniqueItems": True,
        "items": {"type": "integer", "minimum": 9, "maximum": 17},
        "x-drready": {"in": "ven-resource-attributes"},
    },
    "DRREADY_PROFILE": {
        "description": "The program follows this profile (version string).",
        "type": "array",
        "minItems": 1,
        "maxItems": 1,
        "items": {"const": "drready-openadr3-1"},
        "x-drready": {"in": "program-attributes"},
    },
    pf.LEGACY_RATED_POWER: {
        **_number(
            0,
            "Deprecated (read, never written): the rated electric input [kW]; "
            "MAX_POWER_CONSUMPTION replaces it.",
        ),
        "x-drready": {"in": "ven-resource-attributes", "deprecated": True},
    },
}
"""JSON Schema of the ``values`` of every private type, by type."""

_VALUES_IN = {
    "event": "event-interval-payloads",
    "eventRequest": "event-interval-payloads",
    "report": "report-payloads",
    "reportRequest": "report-payloads",
    "program": "program-attributes",
    "programRequest": "program-attributes",
    "resource": "ven-resource-attributes",
    "VenResourceRequest": "ven-resource-attributes",
    "BlResourceRequest": "ven-resource-attributes",
    "ven": "ven-resource-attributes",
    "VenVenRequest": "ven-resource-attributes",
    "BlVenRequest": "ven-resource-attributes",
}


def _values_maps(schema: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if schema.startswith("event"):
        return [p for iv in body.get("intervals") or () for p in iv.get("payloads") or ()]
    if schema.startswith("report"):
        return [
            p
            for r in body.get("resources") or ()
            for iv in r.get("intervals") or ()
            for p in iv.get("payloads") or ()
        ]
    return list(body.get("attributes") or ())


def wire_problems(schema: str, body: dict[str, Any]) -> list[str]:
    """What makes ``body`` not a valid ``schema`` (``report``, ``eventRequest`` …) of the 3.1.0
    specification with every value within its type's schema; empty when it is valid."""
    invalid = sorted(schema_validator(schema).iter_errors(body), key=lambda e: e.json_path)
    if invalid:
        return [f"{schema} {e.json_path}: {e.message}" for e in invalid[:5]]
    definitions = enumeration_document(_VALUES_IN[schema])["definitions"]
    out = []
    for vm in _values_maps(schema, body):
        kind = vm.get("type")
        type_schema = definitions.get(kind) or PRIVATE_TYPE_SCHEMAS.get(str(kind))
        if type_schema is None:
            out.append(f"{kind}: neither a 3.1.0 type nor one of the profile's private types")
            continue
        errors = list(Draft202012Validator(type_schema).iter_errors(vm.get("values")))
        if errors:
            out.append(f"{kind}: {errors[0].message}")
    return out
