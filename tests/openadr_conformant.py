"""Check an OpenADR body against the whole 3.1.0 specification, not only ``openadr3.yaml``.

``openadr3.yaml`` types a ``valuesMap``'s ``values`` loosely (any number, string, boolean or
point); the per-type rules — ``DISPATCH_SETPOINT_RELATIVE`` ≥ 0, ``CONTROL_LEVEL_OFFSET`` an
integer in −10…10, ``MAX_POWER_CONSUMPTION`` ≥ 0 kW, … — are the JSON Schemas in the spec's
``enumerations/`` (issue 17 item 1). :func:`check` applies both: the OpenAPI schema of the body,
then each ``valuesMap`` against its enumeration (event interval payloads, report payloads,
resource/VEN attributes, program attributes), each descriptor's ``payloadType``, ``units`` and
``readingType`` against theirs. A type the spec does not define must be one of drready's
private strings (``DRREADY_`` prefix, Definition.md "Private Strings").
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from drready.openadr.spec import enumeration, enumeration_document, validate

PRIVATE_PREFIX = "DRREADY_"

_VALUES_OF = {
    "event": "event-interval-payloads",
    "eventRequest": "event-interval-payloads",
    "report": "report-payloads",
    "reportRequest": "report-payloads",
    "resource": "ven-resource-attributes",
    "resourceRequest": "ven-resource-attributes",
    "BlResourceRequest": "ven-resource-attributes",
    "VenResourceRequest": "ven-resource-attributes",
    "ven": "ven-resource-attributes",
    "venRequest": "ven-resource-attributes",
    "VenVenRequest": "ven-resource-attributes",
    "BlVenRequest": "ven-resource-attributes",
    "program": "program-attributes",
    "programRequest": "program-attributes",
}


def _check_values_map(enum_name: str, vm: dict[str, Any], where: str) -> None:
    definitions = enumeration_document(enum_name)["definitions"]
    kind = vm["type"]
    if kind in definitions:
        errors = sorted(Draft202012Validator(definitions[kind]).iter_errors(vm["values"]), key=str)
        assert not errors, f"{where} {kind}: {errors[0].message} ({enum_name})"
    else:
        assert kind.startswith(PRIVATE_PREFIX), (
            f"{where}: {kind!r} is neither in {enum_name} nor a {PRIVATE_PREFIX} private type"
        )


def _known_or_private(value: str, enum_name: str, where: str) -> None:
    assert value in enumeration(enum_name) or value.startswith(PRIVATE_PREFIX), (
        f"{where}: {value!r} is neither in {enum_name} nor a {PRIVATE_PREFIX} private string"
    )


def check(schema: str, body: dict[str, Any]) -> None:
    """``body`` is a valid ``schema`` (``eventRequest``, ``reportRequest``, …) with every
    enumerated value within its enumeration's schema (``AssertionError`` naming the place)."""
    validate(schema, body)
    enum_name = _VALUES_OF[schema]
    if enum_name == "event-interval-payloads":
        for i, iv in enumerate(body.get("intervals") or ()):
            for vm in iv["payloads"]:
                _check_values_map(enum_name, vm, f"intervals[{i}]")
        for d in body.get("payloadDescriptors") or ():
            _known_or_private(d["payloadType"], enum_name, "payloadDescriptors")
            if "units" in d:
                _known_or_private(d["units"], "units", "payloadDescriptors.units")
        for d in body.get("reportDescriptors") or ():
            _known_or_private(d["payloadType"], "report-payloads", "reportDescriptors")
            if "readingType" in d:
                _known_or_private(d["readingType"], "reading-types", "reportDescriptors")
            if "units" in d:
                _known_or_private(d["units"], "units", "reportDescriptors.units")
    elif enum_name == "report-payloads":
        for r in body["resources"]:
            for iv in r["intervals"]:
                for vm in iv["payloads"]:
                    _check_values_map(enum_name, vm, f"{r['resourceName']} interval {iv['id']}")
        for d in body.get("payloadDescriptors") or ():
            _known_or_private(d["payloadType"], enum_name, "payloadDescriptors")
            if "readingType" in d:
                _known_or_private(d["readingType"], "reading-types", "payloadDescriptors")
            if "units" in d:
                _known_or_private(d["units"], "units", "payloadDescriptors.units")
    else:
        for vm in body.get("attributes") or ():
            _check_values_map(enum_name, vm, "attributes")
        for d in body.get("payloadDescriptors") or ():
            _known_or_private(d["payloadType"], "event-interval-payloads", "payloadDescriptors")
