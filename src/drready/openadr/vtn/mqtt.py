"""The MQTT notifier binding of the VTN (OpenADR 3.1.0, Definition.md "Notifications via
Additional Protocols"; C1, S1).

:class:`MqttNotifier` implements the :class:`~drready.openadr.vtn.notify.Notifier` protocol: it
publishes every committed change as a :class:`~drready.openadr.models.Notification` (JSON, the
same body a webhook receives) to the topics below. :meth:`MqttNotifier.publish` only queues; a
worker thread owns a paho-mqtt client (``connect_async`` + ``loop_start``: it reconnects by
itself, and QoS 1 messages published while disconnected wait in paho's bounded queue), so a
request never waits on the broker. :class:`CompositeNotifier` fans a change out to several
notifiers (webhooks and MQTT).

Topic names
-----------
Definition.md gives one example (``GET /notifiers/mqtt/topics/programs`` →
``programs/create``, ``programs/update``, ``programs/delete``, ``ALL`` = ``programs/+``) and
openadr3.yaml ``notifierOperationsTopics`` the pattern ``{objectType}s/<operation>``; the VTN
extends the pattern to every topic endpoint: ``<endpoint path after /notifiers/mqtt/topics/>``
+ ``/create|update|delete``, ``ALL`` = ``<path>/+``, and no ``CREATE`` for one object's
topics (``programs/{programID}``, ``vens/{venID}``), as ``notifierOperationsTopics.CREATE``
says — except that a ven's topics sit under its owner's subtree,
``clients/{clientID}/vens/{venID}/…`` (:func:`ven_prefix`), so that the broker's ACL can keep
each client to its own topics with one pattern (:mod:`drready.openadr.vtn.mqtt_access`). The
topic-name endpoints answer these names, which is all a client needs (the specification lets
the VTN name its topics). A change is published to

* ``programs|events|reports|subscriptions|vens|resources/<op>`` — the full object (BL);
* ``programs/{programID}/<op>`` (program update/delete), ``programs/{programID}/events/<op>``
  (events of the program) — the full object (BL: their endpoints need ``read_all``);
* ``clients/{clientID}/vens/{venID}/<op>`` (update/delete of that ven object) — the ven's
  owner and BL;
* ``clients/{clientID}/vens/{venID}/resources/<op>`` — resources of that ven;
* ``clients/{clientID}/vens/{venID}/events/<op>``, ``…/programs/<op>`` — with object privacy:
  an object without targets goes to every ven; a targeted one only to the vens granted one of
  its targets (targets of the ven object and of its resources), **with target hiding** (only
  the granted targets remain in the object and the notification).

A ven whose owner's client id cannot be a topic level (``/``, ``+``, ``#``: see
:func:`~drready.openadr.vtn.mqtt_access.check_user_name`) gets no per-VEN publication (logged).

Security
--------
The broker, not the VTN, decides who may subscribe to what. In production the broker **must**
use TLS (``mqtts://``; Definition.md "MQTT": clients MUST use MQTTS) and enforce per-client
ACLs equivalent to the REST scopes: ``drready vtn mqtt-config`` writes them for Mosquitto
(:mod:`~drready.openadr.vtn.mqtt_access`: a broker CA and mutual TLS, the general topics for BL
only, ``clients/%u/#`` for each client, publishing for the VTN's own user only), and ``drready
vtn serve --mqtt-ca-key`` gives each client its certificate through ``GET /notifiers`` and
publishes with its own (:mod:`~drready.openadr.vtn.mqtt_certs`). The loopback anonymous broker
(``mqtt://127.0.0.1:1883``) is for development and tests.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import queue
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from drready.openadr.models import Notification, ObjectType, Operation, to_wire
from drready.openadr.vtn.mqtt_access import VTN_USER
from drready.openadr.vtn.mqtt_certs import issuer_for
from drready.openadr.vtn.notify import Notifier, NullNotifier
from drready.openadr.vtn.store import StoredObject

if TYPE_CHECKING:
    from fastapi import FastAPI
    from paho.mqtt.client import Client

__all__ = [
    "CompositeNotifier",
    "MqttNotifier",
    "MqttStats",
    "VenGrant",
    "attach_mqtt",
    "collection_topics",
    "object_topics",
    "route",
    "ven_grants_from",
    "ven_prefix",
]

log = logging.getLogger(__name__)

COLLECTIONS: dict[ObjectType, str] = {
    ObjectType.PROGRAM: "programs",
    ObjectType.EVENT: "events",
    ObjectType.REPORT: "reports",
    ObjectType.SUBSCRIPTION: "subscriptions",
    ObjectType.VEN: "vens",
    ObjectType.RESOURCE: "resources",
}
"""The topic prefix of each object type's general topics."""

_PUBLISHED = (Operation.CREATE, Operation.UPDATE, Operation.DELETE)

VenGrant = tuple[str, str | None, frozenset[str]]
"""A ven object's id, its owner's client id, and the targets granted to it (its own and its
resources')."""

_TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")  # mqtt_access.check_user_name's rule


def ven_prefix(ven_id: str, client_id: str | None) -> str | None:
    """The topic prefix of a ven, ``clients/{clientID}/vens/{venID}``; None when the owner's
    client id cannot be a topic level (or the ven has none)."""
    if client_id is None or not _TOPIC_LEVEL.match(client_id) or not _TOPIC_LEVEL.match(ven_id):
        return None
    return f"clients/{client_id}/vens/{ven_id}"


def _topic(prefix: str, operation: Operation) -> str:
    return f"{prefix}/{operation.value.lower()}"


def collection_topics(prefix: str) -> dict[str, str]:
    """``notifierOperationsTopics`` of a collection: CREATE, UPDATE, DELETE and ALL."""
    topics = {op.value: _topic(prefix, op) for op in _PUBLISHED}
    topics["ALL"] = f"{prefix}/+"
    return topics


def object_topics(prefix: str) -> dict[str, str]:
    """``notifierOperationsTopics`` of one object: no CREATE (it exists already)."""
    topics = collection_topics(prefix)
    del topics["CREATE"]
    return topics


def route(
    operation: Operation,
    object_type: ObjectType,
    wire_object: dict[str, Any],
    vens: Callable[[], Sequence[VenGrant]],
) -> list[tuple[str, dict[str, Any]]]:
    """Every (topic, object as that topic's readers may see it) for one change.

    ``vens`` is called only for programs, events (the per-VEN targeting needs it) and
    resources (their ven's owner names the topic).
    """
    if operation not in _PUBLISHED:
        return []
    out: list[tuple[str, dict[str, Any]]] = [
        (_topic(COLLECTIONS[object_type], operation), wire_object)
    ]
    oid = wire_object.get("id")
    if object_type is ObjectType.PROGRAM and oid and operation is not Operation.CREATE:
        out.append((_topic(f"programs/{oid}", operation), wire_object))
    elif object_type is ObjectType.EVENT and wire_object.get("programID"):
        out.append((_topic(f"programs/{wire_object['programID']}/events", operation), wire_object))
    elif object_type is ObjectType.VEN and oid and operation is not Operation.CREATE:
        prefix = ven_prefix(oid, wire_object.get("clientID"))
        if prefix is not None:
            out.append((_topic(prefix, operation), wire_object))
    elif object_type is ObjectType.RESOURCE and wire_object.get("venID"):
        owner = next((c for v, c, _ in vens() if v == wire_object["venID"]), None)
        prefix = ven_prefix(wire_object["venID"], owner)
        if prefix is not None:
            out.append((_topic(f"{prefix}/resources", operation), wire_object))
    if object_type in (ObjectType.PROGRAM, ObjectType.EVENT):
        sub = COLLECTIONS[object_type]
        targets = wire_object.get("targets") or []
        for ven_id, client_id, granted in vens():
            prefix = ven_prefix(ven_id, client_id)
            if prefix is None:
                log.warning("ven %r: client id %r cannot name a topic", ven_id, client_id)
                continue
            if not targets:
                seen = wire_object
            else:
                kept = [t for t in targets if t in granted]
                if not kept:
                    continue
                seen = {**wire_object, "targets": kept}
            out.append((_topic(f"{prefix}/{sub}", operation), seen))
    return out


def ven_grants_from(factory: sessionmaker[Session]) -> Callable[[], list[VenGrant]]:
    """Reads every ven object and the targets granted to it from the VTN's store."""

    def grants() -> list[VenGrant]:
        stmt = select(
            StoredObject.id,
            StoredObject.object_type,
            StoredObject.ven_id,
            StoredObject.client_id,
            StoredObject.targets,
        ).where(StoredObject.object_type.in_(("VEN", "RESOURCE")))
        granted: dict[str, set[str]] = {}
        owners: dict[str, str | None] = {}
        resources: list[tuple[str | None, list[str]]] = []
        with factory() as session:
            for oid, kind, ven_id, client_id, targets in session.execute(stmt):
                if kind == "VEN":
                    granted.setdefault(oid, set()).update(targets or ())
                    owners[oid] = client_id
                else:
                    resources.append((ven_id, targets or []))
        for ven_id, targets in resources:
            if ven_id in granted:
                granted[ven_id].update(targets)
        return [(vid, owners.get(vid), frozenset(ts)) for vid, ts in granted.items()]

    return grants


@dataclass
class MqttStats:
    """Publication counters (messages, not changes)."""

    queued: int = 0
    published: int = 0
    dropped: int = 0
    failed: int = 0


_Item = tuple[Operation, ObjectType, dict[str, Any]] | None


class MqttNotifier:
    """Publishes the VTN's changes to an MQTT broker (see the module docstring).

    Parameters
    ----------
    broker_url : str
        ``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` (TLS; ``tls`` or the system CAs).
    vens : callable, optional
        Returns every ven id with its granted targets (:func:`ven_grants_from`); without it no
        per-VEN program/event topics are published.
    qos : int
        QoS of every publication (default 1: at least once, queued while disconnected).
    max_queue : int
        Changes waiting for the worker; beyond it changes are dropped (counted, logged) rather
        than blocking a request.
    """

    def __init__(
        self,
        broker_url: str,
        *,
        vens: Callable[[], Sequence[VenGrant]] | None = None,
        qos: int = 1,
        max_queue: int = 10_000,
        tls: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        keepalive_s: int = 30,
    ) -> None:
        parts = urlsplit(broker_url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(
                f"broker_url must be mqtt://host[:port] or mqtts://…, got {broker_url!r}"
            )
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos}")
        self.broker_url = broker_url
        self.host: str = parts.hostname
        self.use_tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if self.use_tls else 1883)
        self.vens = vens
        self.qos = qos
        self.tls = tls
        self.username = username
        self.password = password
        self.client_id = client_id or f"drready-vtn-{secrets.token_hex(6)}"
        self.keepalive_s = keepalive_s
        self.stats = MqttStats()
        self.connected = threading.Event()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._client: Client | None = None

    # --- the Notifier protocol -------------------------------------------------------------
    def publish(
        self, operation: Operation, object_type: ObjectType, wire_object: dict[str, Any]
    ) -> None:
        """Queue the change and return at once (never blocks, never raises)."""
        try:
            self._ensure_worker()
            self._queue.put_nowait((operation, object_type, wire_object))
            self.stats.queued += 1
        except queue.Full:
            self.stats.dropped += 1
            log.warning("MQTT notifier queue full: %s %s dropped", operation, object_type)
        except Exception:  # the contract: never raise into the request
            log.exception("MQTT notifier could not queue a change")

    # --- lifecycle -------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="mqtt-notifier", daemon=True
                )
                self._thread.start()

    def start(self) -> None:
        """Start the worker (and the broker connection) before the first change."""
        self._ensure_worker()

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued change was handed to paho and paho sent it (tests)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        client = self._client
        while client is not None and time.monotonic() < deadline:
            if not client.want_write() and self.connected.is_set():
                break
            time.sleep(0.01)

    def close(self, timeout_s: float = 5.0) -> None:
        """Publish what is queued (within ``timeout_s``), disconnect and stop the worker."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout_s)
            thread.join(timeout_s)

    def _make_client(self) -> Client:
        from paho.mqtt.client import Client, MQTTv311
        from paho.mqtt.enums import CallbackAPIVersion

        client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTv311,
        )
        client.max_queued_messages_set(self._queue.maxsize)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if self.use_tls:
            client.tls_set_context(self.tls or ssl.create_default_context())
        if self.username is not None:
            client.username_pw_set(self.username, self.password)

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if not getattr(reason, "is_failure", False):
                self.connected.set()
            else:
                log.warning("MQTT broker %s refused the VTN: %s", self.broker_url, reason)

        def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            self.connected.clear()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        client.loop_start()  # paho's thread connects, reconnects and sends
        return client

    def _work(self) -> None:
        try:
            client = self._client = self._make_client()
        except Exception:
            log.exception("MQTT notifier could not start its client (%s)", self.broker_url)
            client = None
        try:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    if client is not None:
                        self._publish_all(client, *item)
                except Exception:  # the worker must survive anything
                    self.stats.failed += 1
                    log.exception("MQTT publication crashed")
                finally:
                    self._queue.task_done()
        finally:
            if client is not None:
                client.disconnect()
                client.loop_stop()

    def _publish_all(
        self, client: Client, op: Operation, kind: ObjectType, obj: dict[str, Any]
    ) -> None:
        vens = self.vens if self.vens is not None else list
        for topic, seen in route(op, kind, obj, vens):
            note = Notification.model_validate(
                {
                    "object_type": kind,
                    "operation": op,
                    "object": seen,
                    "targets": seen.get("targets"),
                }
            )
            payload = json.dumps(to_wire(note), separators=(",", ":")).encode()
            info = client.publish(topic, payload, qos=self.qos)
            if info.rc == 0 or (info.rc == 4 and self.qos > 0):  # 4: NO_CONN, queued by paho
                self.stats.published += 1
            else:
                self.stats.failed += 1
                log.warning("MQTT publish to %s failed: rc=%s", topic, info.rc)


class CompositeNotifier:
    """Fans every change out to several notifiers (each gets its own copy of the object)."""

    def __init__(self, notifiers: Iterable[Notifier]) -> None:
        self.notifiers: tuple[Notifier, ...] = tuple(notifiers)

    def verify_callback(self, url: str) -> None:
        """The echo challenge of the webhook notifier among these (none: nothing to verify);
        raises :class:`~drready.openadr.vtn.webhooks.CallbackRejectedError`."""
        for notifier in self.notifiers:
            verify = getattr(notifier, "verify_callback", None)
            if verify is not None:
                verify(url)

    def publish(
        self, operation: Operation, object_type: ObjectType, wire_object: dict[str, Any]
    ) -> None:
        """Hand the change to each notifier; one failing does not stop the others."""
        last = len(self.notifiers) - 1
        for i, notifier in enumerate(self.notifiers):
            try:
                obj = wire_object if i == last else copy.deepcopy(wire_object)
                notifier.publish(operation, object_type, obj)
            except Exception:
                log.exception("notifier %r failed", notifier)


def attach_mqtt(app: FastAPI, notifier: MqttNotifier | None = None) -> MqttNotifier:
    """Add MQTT publication to ``app``'s notifier and return the :class:`MqttNotifier`.

    Uses ``notifier``, else the one attached before (``app.state.mqtt_notifier``), else a new
    one for ``settings.mqtt_broker_url``. The app's current notifier (webhooks, say) keeps
    receiving every change: both are wrapped in a :class:`CompositeNotifier`. Call it again
    after anything that replaces ``app.state.notifier`` (e.g.
    :func:`~drready.openadr.vtn.webhook_setup.attach_webhooks`); it is idempotent.
    """
    settings = app.state.settings
    issuer = getattr(app.state, "mqtt_certs", None)
    if issuer is None and settings.mqtt_ca_key_file is not None:
        issuer = app.state.mqtt_certs = issuer_for(settings)
    mqtt = notifier or getattr(app.state, "mqtt_notifier", None)
    if mqtt is None:
        url = settings.mqtt_broker_url
        if url is None:
            raise ValueError("settings.mqtt_broker_url is not set: no broker to publish to")
        tls = (
            ssl.create_default_context(cafile=settings.mqtt_ca_file)
            if settings.mqtt_ca_file
            else None
        )
        username = settings.mqtt_username
        if issuer is not None and tls is not None:  # certificate authentication
            cert, key = issuer.files(settings.mqtt_username or VTN_USER)
            tls.load_cert_chain(cert, key)
            username = None  # the broker takes the certificate's CN
        mqtt = MqttNotifier(
            url, vens=ven_grants_from(app.state.sessionmaker), username=username, tls=tls
        )
    app.state.mqtt_notifier = mqtt
    current: Notifier = getattr(app.state, "notifier", None) or NullNotifier()
    if isinstance(current, CompositeNotifier):
        others = [n for n in current.notifiers if n is not mqtt]
    else:
        others = [] if isinstance(current, NullNotifier) or current is mqtt else [current]
    app.state.notifier = CompositeNotifier([*others, mqtt]) if others else mqtt
    return mqtt
