"""Connect :class:`~drready.openadr.vtn.webhooks.WebhookNotifier` to a VTN app (C1, S1).

:func:`attach_webhooks` reads subscriptions from the VTN's own store for every change and
applies the object-privacy rules of Definition.md to each subscriber before anything is sent:

* a subscriber whose OAuth2 client is BL receives every object as it is;
* a VEN receives ven, resource, report and subscription objects only when their ``clientID``
  is its own;
* a VEN receives a program or event without targets always, and a targeted one only when the
  subscription's targets ∩ the targets granted to the VEN (its ven and resource objects) meet
  the object's targets — with target hiding: only those targets are in the notification. A
  subscription without targets asks for every target granted to the VEN (as a VEN's read by
  id does), so a VEN need not list its thousand resources in its subscription.
"""

from __future__ import annotations

import ssl
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from drready.openadr.models import Subscription, from_wire
from drready.openadr.vtn.mqtt import CompositeNotifier
from drready.openadr.vtn.notify import NullNotifier
from drready.openadr.vtn.store import StoredObject, targets_of_vens
from drready.openadr.vtn.webhooks import WebhookNotifier
from drready.security.tokens import ClientRegistry

_OWNED = {"VEN", "RESOURCE", "REPORT", "SUBSCRIPTION"}


def attach_webhooks(
    app: FastAPI,
    *,
    signing_key: bytes,
    verify: ssl.SSLContext | bool | str = True,
    allow_private_callbacks: bool = False,
    **options: Any,
) -> WebhookNotifier:
    """Install a webhook notifier on ``app`` and return it; a notifier the app already has (the
    MQTT binding) keeps receiving every change."""
    sessionmaker = app.state.sessionmaker
    registry: ClientRegistry = app.state.registry

    def subscriptions() -> list[Subscription]:
        with sessionmaker() as session:
            rows = session.scalars(
                select(StoredObject).where(StoredObject.object_type == "SUBSCRIPTION")
            ).all()
            return [from_wire(Subscription, dict(r.body)) for r in rows]

    def is_bl(client_id: str) -> bool:
        record = next((c for c in registry.clients if c.client_id == client_id), None)
        return record is not None and record.role == "bl"

    def visible_to(sub: Subscription, obj: dict[str, Any]) -> dict[str, Any] | None:
        if is_bl(sub.client_id):
            return obj
        kind = obj.get("objectType")
        if kind in _OWNED:
            return obj if obj.get("clientID") == sub.client_id else None
        targets = obj.get("targets") or []
        if not targets:
            return obj
        with sessionmaker() as session:
            granted = targets_of_vens(session=session, client_id=sub.client_id)
        effective = set(sub.targets) & granted if sub.targets else granted
        kept = [t for t in targets if t in effective]
        return {**obj, "targets": kept} if kept else None

    notifier = WebhookNotifier(
        subscriptions=subscriptions,
        visible_to=visible_to,
        signing_key=signing_key,
        verify=verify,
        allow_private_callbacks=allow_private_callbacks,
        **options,
    )
    current = app.state.notifier
    # keep whatever already publishes (the MQTT binding, say): fan out to both
    app.state.notifier = (
        notifier if isinstance(current, NullNotifier) else CompositeNotifier([current, notifier])
    )
    return notifier
