"""ECHONET Lite Machine Readable Appendix (MRA), Release R: class and property specifications.

Serves C1 (machine-readable communication between home gateway and device): the property
schemas loaded here drive the generic value codec :mod:`drready.echonet.values`, so the device
and the controller validate every EDT against the published spec instead of hand-written tables.

The JSON files of the MRA (``metaData.json``, ``definitions.json``, one file per class) ship in
``drready/data/echonet_mra`` and are read at run time with :mod:`importlib.resources`.

Rules applied
-------------
* Where an EPC has several entries with different ``validRelease`` ranges, the one valid at
  Release R is taken (releases are the letters A…R; ``"latest"`` stands for R). An EPC without
  an entry valid at R is left out.
* Device classes get the super class 0x0000 merged in; the class's own entry wins. The node
  profile 0x0EF0 likewise gets its own properties plus those super class ones it does not
  redefine (as the task specifies; the profile super class is not a separate MRA file).
* ``$ref`` is resolved recursively (through ``oneOf``, object elements, array items and bitmap
  values); keys next to a ``$ref`` (e.g. ``coefficient``) override the referenced definition.

References
----------
ECHONET Consortium / Kanagawa Institute of Technology, "Machine Readable Appendix" V1.3.0
(2024-07-26), Release R.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any

__all__ = [
    "MRA_RELEASE",
    "Access",
    "ClassSpec",
    "PropertySpec",
    "class_spec",
    "known_class_ids",
]

#: The MRA release these specs are taken from.
MRA_RELEASE = "R"

_SUPER_CLASS_ID = 0x0000


class Access(StrEnum):
    """Access rule of a property for Get, Set or INF (MRA ``accessRule``)."""

    REQUIRED = "required"
    #: Required only under a condition stated in the spec (e.g. one of several capacities).
    REQUIRED_C = "required_c"
    #: Required when the function exists ("required if implemented").
    REQUIRED_O = "required_o"
    OPTIONAL = "optional"
    NOT_APPLICABLE = "notApplicable"


@dataclass(frozen=True)
class PropertySpec:
    """One property of a class, with its data schema fully ``$ref``-resolved."""

    epc: int
    name_en: str
    name_ja: str
    short_name: str
    get: Access
    set: Access
    inf: Access
    data: Mapping[str, Any]


@dataclass(frozen=True)
class ClassSpec:
    """A device or profile class and its properties at Release R (super class merged in)."""

    class_id: int
    short_name: str
    name_en: str
    properties: Mapping[int, PropertySpec]


def _load(name: str) -> Any:
    resource = files("drready") / "data" / "echonet_mra" / name
    return json.loads(resource.read_text(encoding="utf-8"))


@cache
def _definitions() -> Mapping[str, Any]:
    defs: Mapping[str, Any] = _load("definitions.json")["definitions"]
    return defs


@cache
def _class_files() -> Mapping[int, str]:
    root = files("drready") / "data" / "echonet_mra"
    out: dict[int, str] = {}
    for entry in root.iterdir():
        name = entry.name
        if name.startswith("0x") and name.endswith(".json"):
            out[int(name[2:-5], 16)] = name
    return out


def _resolve(node: Any, trail: tuple[str, ...] = ()) -> Any:
    """Return ``node`` with every ``$ref`` replaced by its (resolved) definition."""
    if isinstance(node, list):
        return [_resolve(item, trail) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        prefix = "#/definitions/"
        if not isinstance(ref, str) or not ref.startswith(prefix):
            raise ValueError(f"unsupported $ref {ref!r}")
        name = ref[len(prefix) :]
        if name in trail:
            raise ValueError(f"circular $ref {' → '.join((*trail, name))}")
        target = _resolve(_definitions()[name], (*trail, name))
        merged = dict(target)
        for key, value in node.items():
            if key != "$ref":
                merged[key] = _resolve(value, trail)
        return merged
    return {key: _resolve(value, trail) for key, value in node.items()}


def _release_index(letter: str) -> int:
    if letter == "latest":
        letter = MRA_RELEASE
    return ord(letter) - ord("A")


def _valid_at_release(entry: Mapping[str, Any]) -> bool:
    valid = entry.get("validRelease", {"from": "A", "to": "latest"})
    target = _release_index(MRA_RELEASE)
    return _release_index(valid["from"]) <= target <= _release_index(valid["to"])


def _freeze(node: Any) -> Any:
    if isinstance(node, dict):
        return MappingProxyType({k: _freeze(v) for k, v in node.items()})
    if isinstance(node, list):
        return tuple(_freeze(v) for v in node)
    return node


def _property_spec(entry: Mapping[str, Any]) -> PropertySpec:
    rule = entry["accessRule"]
    names = entry.get("propertyName", {})
    return PropertySpec(
        epc=int(entry["epc"], 16),
        name_en=names.get("en", ""),
        name_ja=names.get("ja", ""),
        short_name=entry.get("shortName", ""),
        get=Access(rule["get"]),
        set=Access(rule["set"]),
        inf=Access(rule["inf"]),
        data=_freeze(_resolve(entry["data"])),
    )


@cache
def _own_class(class_id: int) -> tuple[Mapping[str, Any], dict[int, PropertySpec]]:
    files_by_id = _class_files()
    if class_id not in files_by_id:
        known = ", ".join(f"0x{c:04X}" for c in sorted(files_by_id))
        raise KeyError(f"class 0x{class_id:04X} is not in the bundled MRA (known: {known})")
    raw = _load(files_by_id[class_id])
    props: dict[int, PropertySpec] = {}
    for entry in raw["elProperties"]:
        if _valid_at_release(entry):
            spec = _property_spec(entry)
            props[spec.epc] = spec
    return raw, props


@cache
def class_spec(class_id: int) -> ClassSpec:
    """The :class:`ClassSpec` of ``class_id`` (e.g. 0x026B) at Release R.

    Raises ``KeyError`` naming the known classes when ``class_id`` is not bundled.
    """
    raw, own = _own_class(class_id)
    merged: dict[int, PropertySpec] = {}
    if class_id != _SUPER_CLASS_ID:
        merged.update(_own_class(_SUPER_CLASS_ID)[1])
    merged.update(own)
    return ClassSpec(
        class_id=class_id,
        short_name=raw.get("shortName", ""),
        name_en=raw.get("className", {}).get("en", ""),
        properties=MappingProxyType(dict(sorted(merged.items()))),
    )


def known_class_ids() -> tuple[int, ...]:
    """Class IDs bundled with this package (0x0000 is the device super class)."""
    return tuple(sorted(_class_files()))
