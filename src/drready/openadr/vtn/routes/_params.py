"""Query and path parameter types shared by the routers (openadr3.yaml parameters)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from drready.openadr.models import ObjectType
from drready.openadr.vtn.errors import ApiError

__all__ = [
    "NO_NUL_PATTERN",
    "OBJECT_ID_PATTERN",
    "ClientNameQuery",
    "EventIdQuery",
    "ObjectsQuery",
    "ProgramIdQuery",
    "ResourceNameQuery",
    "TargetsQuery",
    "VenIdQuery",
    "VenNameQuery",
    "object_id_path",
]

OBJECT_ID_PATTERN = r"^[a-zA-Z0-9_-]*$"


def object_id_path(name: str) -> object:
    """A ``{xxxID}`` path parameter (schemas/objectID)."""
    return Path(alias=name, min_length=1, max_length=128, pattern=OBJECT_ID_PATTERN)


def _id_query(name: str, description: str) -> object:
    return Query(
        alias=name, min_length=1, max_length=128, pattern=OBJECT_ID_PATTERN, description=description
    )


NO_NUL_PATTERN = r"^[^\x00]*$"
"""Names and targets hold no U+0000 (PostgreSQL text cannot, and no honest name does)."""


def _name_query(name: str, description: str) -> object:
    return Query(
        alias=name, min_length=1, max_length=128, pattern=NO_NUL_PATTERN, description=description
    )


ProgramIdQuery = Annotated[
    str | None, _id_query("programID", "filter results to objects with programID")
]
EventIdQuery = Annotated[str | None, _id_query("eventID", "filter results to reports with eventID")]
VenIdQuery = Annotated[str | None, _id_query("venID", "filter results to resources with venID")]
ClientNameQuery = Annotated[
    str | None, _name_query("clientName", "filter results to objects with clientName")
]
VenNameQuery = Annotated[str | None, _name_query("venName", "filter results to vens with venName")]
ResourceNameQuery = Annotated[
    str | None, _name_query("resourceName", "filter results to resources with resourceName")
]


async def _targets(
    targets: Annotated[
        list[str] | None,
        Query(alias="targets", description="targets (repeat the parameter for several)"),
    ] = None,
) -> tuple[str, ...] | None:
    if targets is None:
        return None
    for i, target in enumerate(targets):
        if not 1 <= len(target) <= 128:
            raise ApiError(400, f"query.targets.{i}: a target has 1 to 128 characters")
        if "\x00" in target:
            raise ApiError(400, f"query.targets.{i}: U+0000 (NUL) is not allowed")
    return tuple(targets)


TargetsQuery = Annotated[tuple[str, ...] | None, Depends(_targets)]
ObjectsQuery = Annotated[
    list[ObjectType] | None,
    Query(alias="objects", description="subscriptions to any of these object types"),
]
