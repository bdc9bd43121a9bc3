"""The notification hook of the VTN (C1: OpenADR subscriptions / webhooks, S1).

Every successful create, update and delete of an OpenADR object ends with one call of
:meth:`Notifier.publish`. Webhook delivery (echo verification, HTTPS, signing, retries,
target filtering per subscription) is implemented elsewhere against this protocol.
"""

from __future__ import annotations

from typing import Any, Protocol

from drready.openadr.models import ObjectType, Operation

__all__ = ["Notifier", "NullNotifier"]


class Notifier(Protocol):
    """Receives the VTN's object changes.

    Contract
    --------
    * Called **after** the change is committed, once per changed object, in commit order of the
      request that made it; never for reads or failed writes.
    * ``operation`` is ``CREATE``, ``UPDATE`` or ``DELETE``; ``object_type`` the object's type;
      ``wire_object`` the full object as the VTN stores it (JSON-ready dict, camelCase, *no*
      target hiding applied: the implementation must apply the targeting rules of
      Definition.md "Object Privacy" per subscriber before sending). The dict is a fresh copy
      the implementation may keep.
    * Must never block the request nor raise: implementations queue the work and return at once
      (it is called from the request's worker thread). An exception escaping ``publish`` is
      logged by the VTN and otherwise ignored; the request still succeeds.
    """

    def publish(
        self, operation: Operation, object_type: ObjectType, wire_object: dict[str, Any]
    ) -> None:
        """Queue a notification of ``operation`` on ``wire_object``."""


class NullNotifier:
    """The default :class:`Notifier`: drops everything."""

    def publish(
        self, operation: Operation, object_type: ObjectType, wire_object: dict[str, Any]
    ) -> None:
        """Do nothing."""
