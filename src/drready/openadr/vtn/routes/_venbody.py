"""Request bodies of ``/vens`` and ``/resources``: who may send which request type (S1, D6).

Only BL may write ``targets`` (and ``clientID``) of ven and resource objects (Definition.md
"Object Privacy"): a VEN sending a ``BL_…_REQUEST`` or any ``targets`` gets 403; BL must use
the ``BL_…_REQUEST`` form, which names the VEN's ``clientID``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from drready.openadr.vtn.deps import PrincipalDep, is_bl, wire_body
from drready.openadr.vtn.errors import ApiError
from drready.security.strict_json import JsonRefusedError
from drready.security.strict_json import loads as strict_loads

__all__ = ["role_checked_body"]


def role_checked_body(
    cls: Any, *, bl_type: str, ven_type: str
) -> Callable[[Request, Any], Awaitable[Any]]:
    """A dependency parsing ``cls`` (``VenCreate``/``ResourceCreate``) after the role rules."""
    parse = wire_body(cls)

    async def checked(request: Request, principal: PrincipalDep) -> Any:
        raw = await request.body()
        object_type: object = None
        has_targets = False
        try:
            data = strict_loads(raw)
            if isinstance(data, dict):
                object_type = data.get("objectType")
                has_targets = "targets" in data
        except JsonRefusedError:
            pass  # reported by the parser below
        if is_bl(principal):
            if object_type == ven_type:
                raise ApiError(
                    400, f"objectType: BL clients send {bl_type} (with the VEN's clientID)"
                )
        elif object_type == bl_type or has_targets:
            raise ApiError(
                403, f"only BL may write targets or send {bl_type}; a VEN sends {ven_type}"
            )
        return await parse(request)

    return checked
