"""The DR servicer's business-logic (BL) client of its own VTN (C1, S1, D3, D5, D6).

OpenADR 3.1 separates the VTN (the server every party talks to) from the *business logic* that
decides what to ask: BL is a client of the VTN with the ``write_programs``/``write_events``
scopes and the right to read every VEN's objects. The servicer is that BL, so it reaches the
resources of both routes — home gateways (route i) and maker clouds (route ii) — through the
same HTTPS interface as any other BL would, never by reaching into the VTN's tables. That keeps
the VTN a plain, conformant OpenADR server and lets the servicer run as its own process.

:class:`BlClient` adds to :class:`~drready.openadr.ven.OpenAdrClient` (TLS, token, paging,
errors) what BL does: the program, events (create, delete), the VENs and resources, and
granting a resource its own name as a *target* so that events targeted at that name reach its
VEN (Definition.md "Targeting"; the VTN returns a targeted event to a VEN only if BL granted
the target to one of its objects).

:class:`ObservedTransport` times every request the client makes and tells an observer (the
running service's VTN latency histogram and its last successful VTN contact,
:mod:`drready.servicer.metrics`); :func:`observed_bl_client` builds a client on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from drready.openadr import profile
from drready.openadr.models import (
    BlResourceCreate,
    Event,
    EventCreate,
    Program,
    Resource,
    Ven,
)
from drready.openadr.ven import OpenAdrClient
from drready.security.tls import client_ssl_context

__all__ = ["OPERATIONS", "BlClient", "ObservedTransport", "VtnObserver", "observed_bl_client"]

#: The operations of the VTN a request is counted under (the first path segment that is one of
#: them; anything else is ``"other"``): ids in paths would make a label per object.
OPERATIONS = frozenset(
    {"programs", "events", "reports", "vens", "resources", "subscriptions", "auth", "notifiers"}
)

VtnObserver = Callable[[str, str, float, int | None], None]
"""Told of each request: method, operation (:data:`OPERATIONS` or ``"other"``), seconds until
the answer's headers arrived, and its status (``None`` when no answer came)."""


def _operation(path: str) -> str:
    return next((seg for seg in path.split("/") if seg in OPERATIONS), "other")


class ObservedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that times each request of ``inner`` and tells ``observe``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, observe: VtnObserver) -> None:
        self._inner = inner
        self._observe = observe

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        operation = _operation(request.url.path)
        t0 = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._observe(request.method, operation, time.perf_counter() - t0, None)
            raise
        self._observe(request.method, operation, time.perf_counter() - t0, response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def observed_bl_client(
    base_url: str,
    client_id: str,
    client_secret: str,
    *,
    ca_file: str | None,
    observe: VtnObserver,
    timeout_s: float = 10.0,
    allow_insecure_http: bool = False,
) -> BlClient:
    """A :class:`BlClient` whose requests go through an :class:`ObservedTransport`.

    ``ca_file``: the PEM CA the VTN's certificate must chain to (``None``: the system store).
    """
    verify: Any = client_ssl_context(ca_file) if ca_file is not None else True
    inner = httpx.AsyncHTTPTransport(verify=verify)
    return BlClient(
        base_url,
        client_id,
        client_secret,
        verify=verify,
        timeout_s=timeout_s,
        allow_insecure_http=allow_insecure_http,
        transport=ObservedTransport(inner, observe),
    )


class BlClient(OpenAdrClient):
    """OpenADR 3.1 client with the BL role (parameters: :class:`OpenAdrClient`)."""

    async def ensure_program(self, name: str = profile.PROGRAM_NAME) -> Program:
        """The drready program ``name``: found, or created with the profile's attributes."""
        found = await self.program_by_name(name)
        if found is not None:
            return found
        return await self._one(Program, "POST", "/programs", profile.program(name))

    async def create_event(self, event: EventCreate) -> Event:
        """Create an event (a potential request or a DR event)."""
        return await self._one(Event, "POST", "/events", event)

    async def delete_event(self, event_id: str) -> Event:
        """Delete (cancel) event ``event_id``; returns the deleted event."""
        return await self._one(Event, "DELETE", f"/events/{event_id}")

    async def event(self, event_id: str) -> Event:
        """Event ``event_id``."""
        return await self._one(Event, "GET", f"/events/{event_id}")

    async def vens(self) -> list[Ven]:
        """Every ven object (BL reads all)."""
        return await self._all(Ven, "/vens")

    async def all_resources(self, ven_id: str | None = None) -> list[Resource]:
        """Every resource, or those of ``ven_id``."""
        params: dict[str, Any] = {} if ven_id is None else {"venID": ven_id}
        return await self._all(Resource, "/resources", params)

    async def grant_own_name(self, resource: Resource) -> Resource:
        """Grant ``resource`` its ``resourceName`` as a target (idempotent)."""
        targets = tuple(resource.targets or ())
        if resource.resource_name in targets:
            return resource
        update = BlResourceCreate(
            client_id=resource.client_id,
            resource_name=resource.resource_name,
            ven_id=resource.ven_id,
            targets=(*targets, resource.resource_name),
            attributes=resource.attributes,
        )
        return await self._one(Resource, "PUT", f"/resources/{resource.id}", update)
