"""Push input of a drready VEN: webhook and MQTT notifications instead of polling (issue 16
item 1; C1, S1).

A :class:`~drready.openadr.ven.PollingVen` (the maker cloud, the home gateway) can subscribe
to the VTN's event notifications; each pushed event is handed to :meth:`PollingVen.push`, which
wakes its loop at once and feeds the event to the same :meth:`VenCore.handle` a poll does
(``Polled``). The core stays I/O-free; this module is the I/O:

* :class:`WebhookReceiver` — an HTTPS callback served in the VEN's own event loop (uvicorn,
  TLS ≥ 1.2 by :mod:`drready.security.tls`): it answers the VTN's echo challenge (``GET
  ?echo=x`` → ``x``), and takes a notification only with the subscription's bearer token
  (constant-time compare) and, when the VEN holds its webhook key (``drready vtn webhook-key``),
  a valid fresh ``X-DRReady-Signature`` (HMAC-SHA256 over ``timestamp.body``, at most
  :data:`MAX_SKEW_S` old). Bodies are bounded (:data:`MAX_BODY_BYTES`) and parsed as the 3.1
  ``notification`` schema.
* :class:`MqttReceiver` — a paho-mqtt client subscribed to the VEN's own events topic
  (``GET /notifiers/mqtt/topics/vens/{venID}/events``), authenticated as ``GET /notifiers``
  says: ``CERTIFICATE`` — mutual TLS with the ``caCert``, ``clientCert`` and ``clientKey`` it
  gives (the key passes through a 0600 file in a private temporary directory, removed once
  loaded: :func:`certificate_context`) — or ``ANONYMOUS``; ``OAUTH2_BEARER_TOKEN`` is not
  implemented (the VEN falls back to polling). The broker's ACL, not this code, keeps other
  publishers out (:mod:`drready.openadr.vtn.mqtt_access`).
* :func:`start_push` — registers the VEN, subscribes (a webhook subscription without targets:
  every target granted to the VEN; its old subscriptions of the same ``clientName`` are
  deleted first, so a restart does not double the notifications), starts the receiver and sets
  the VEN's safety-net poll (:attr:`PollingVen.full_poll_every_s`): a push-driven VEN still
  reads its events now and then, since a notification can be lost (a receiver restart, a
  broker outage, the VTN giving up after its retries). Between, its loop still ticks for the
  power reports (F5) without reading events.

Only EVENT CREATE and UPDATE notifications are acted on; a DELETE changes nothing the VEN
already answered (as with polling, where a deleted event simply stops appearing).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import uvicorn
from pydantic import ValidationError

from drready.openadr.models import Event, Notification, ObjectType, Operation, from_wire
from drready.openadr.ven import PollingVen, VenClient, VenConfigError, VenError
from drready.openadr.vtn.webhooks import verify_signature
from drready.security.paths import write_private_file
from drready.security.tls import uvicorn_ssl_kwargs

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_SKEW_S",
    "PUSH_MODES",
    "MqttReceiver",
    "PushLink",
    "PushMode",
    "PushOptions",
    "WebhookReceiver",
    "certificate_context",
    "event_of",
    "start_push",
    "start_push_or_poll",
]

_log = logging.getLogger(__name__)

PushMode = Literal["poll", "webhook", "mqtt"]
PUSH_MODES: tuple[PushMode, ...] = ("poll", "webhook", "mqtt")
MAX_BODY_BYTES = 1_048_576
"""Largest notification body taken [B] (the VTN's own request limit)."""
MAX_SKEW_S = 300
"""Oldest (or most future) signature timestamp accepted [s]: replays beyond it are refused."""
CALLBACK_PATH = "/openadr/notifications"


def event_of(body: bytes) -> Event | None:
    """The event of a notification body (CREATE or UPDATE of an EVENT), else None.

    Raises
    ------
    ValueError
        The body is not a 3.1 ``notification``.
    """
    try:
        note = from_wire(Notification, json.loads(body))
    except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"not an OpenADR 3.1 notification: {err}") from err
    if note.object_type is not ObjectType.EVENT:
        return None
    if note.operation not in (Operation.CREATE, Operation.UPDATE):
        return None
    return note.object if isinstance(note.object, Event) else None


# ------------------------------------------------------------------ webhook


class _QuietServer(uvicorn.Server):
    """uvicorn inside someone else's event loop: the process's signals stay the owner's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebhookReceiver:
    """The VEN's HTTPS callback (see the module docstring).

    Parameters
    ----------
    on_event : callable
        Called in the event loop with each pushed event.
    certfile, keyfile : str
        The callback server's certificate and key (PEM).
    bearer_token : str
        What the VTN must send as ``Authorization: Bearer …`` (the subscription's
        ``bearerToken``; random by default).
    signing_key : bytes, optional
        The VEN's webhook key; when given, unsigned or stale notifications are refused.
    public_url : str, optional
        The URL the VTN calls (default ``https://host:port/openadr/notifications``).
    """

    def __init__(
        self,
        on_event: Callable[[Event], None],
        *,
        certfile: str,
        keyfile: str,
        host: str = "127.0.0.1",
        port: int = 0,
        bearer_token: str | None = None,
        signing_key: bytes | None = None,
        public_url: str | None = None,
    ) -> None:
        self.on_event = on_event
        self.host = host
        self.port = port
        self.bearer_token = bearer_token or secrets.token_urlsafe(32)
        self.signing_key = signing_key
        self._public_url = public_url
        self._ssl = uvicorn_ssl_kwargs(certfile, keyfile)
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.received = 0
        self.refused = 0

    @property
    def url(self) -> str:
        """The callback URL to subscribe with."""
        if self._public_url is not None:
            return self._public_url
        return f"https://{self.host}:{self.port}{CALLBACK_PATH}"

    async def start(self) -> None:
        """Listen (in the running loop) until :meth:`stop`; ``port`` 0 picks a free one."""
        config = uvicorn.Config(
            self._app,
            host=self.host,
            port=self.port,
            interface="asgi3",
            timeout_graceful_shutdown=1,  # an idle TLS keep-alive never sends close_notify
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            **self._ssl,
        )
        server = self._server = _QuietServer(config)
        self._task = asyncio.create_task(server.serve())
        while not server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
                raise OSError(f"webhook receiver on {self.host}:{self.port} did not start")
            await asyncio.sleep(0.01)
        if self.port == 0:
            self.port = int(server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _authentic(self, headers: dict[bytes, bytes], body: bytes) -> bool:
        given = headers.get(b"authorization", b"")
        if not hmac.compare_digest(given, f"Bearer {self.bearer_token}".encode()):
            return False
        if self.signing_key is None:
            return True
        stamp = headers.get(b"x-drready-timestamp", b"").decode("ascii", "replace")
        signature = headers.get(b"x-drready-signature", b"").decode("ascii", "replace")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW_S:
            return False
        return verify_signature(self.signing_key, stamp, body, signature)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != urlsplit(self.url).path:
            await _answer(send, 404, b"")
            return
        if scope["method"] == "GET":  # the VTN's echo challenge
            echo = parse_qs(scope["query_string"].decode("latin-1")).get("echo", [""])[0]
            await _answer(send, 200, echo[:256].encode(), b"text/plain")
            return
        if scope["method"] != "POST":
            await _answer(send, 405, b"")
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                await _answer(send, 413, b"")
                return
        headers = {k.lower(): v for k, v in scope["headers"]}
        if not self._authentic(headers, body):
            self.refused += 1
            await _answer(send, 401, b"")
            return
        try:
            event = event_of(body)
        except ValueError:
            self.refused += 1
            await _answer(send, 400, b"")
            return
        self.received += 1
        if event is not None:
            self.on_event(event)
        await _answer(send, 204, b"")


async def _answer(send: Any, status: int, body: bytes, kind: bytes = b"text/plain") -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------ MQTT


class MqttReceiver:
    """The VEN's MQTT subscription (see the module docstring); ``on_event`` runs in ``loop``."""

    def __init__(
        self,
        on_event: Callable[[Event], None],
        *,
        broker_url: str,
        topics: list[str],
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(broker_url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"broker_url: mqtt://host[:port] or mqtts://…, got {broker_url!r}")
        self.on_event = on_event
        self.host = parts.hostname
        self.tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.topics = topics
        self.username = username
        self.password = password
        self.ca_file = ca_file
        self.tls_context = tls_context
        if tls_context is not None and not self.tls:
            raise ValueError(
                f"broker_url: certificate authentication needs mqtts://, got {broker_url!r}"
            )
        self.subscribed = threading.Event()
        self.received = 0
        self.refused = 0
        self._client: Any = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connect (paho's thread; reconnects by itself) and subscribe on every connect."""
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        client = Client(callback_api_version=CallbackAPIVersion.VERSION2)
        if self.tls:
            context = self.tls_context or ssl.create_default_context(cafile=self.ca_file)
            client.tls_set_context(context)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if getattr(reason, "is_failure", False):
                _log.warning("MQTT broker refused this VEN: %s", reason)
                return
            c.subscribe([(topic, 1) for topic in self.topics])

        def on_subscribe(c: Any, userdata: Any, mid: Any, codes: Any, props: Any) -> None:
            self.subscribed.set()

        def on_message(c: Any, userdata: Any, message: Any) -> None:
            try:
                event = event_of(message.payload)
            except ValueError:
                self.refused += 1
                return
            self.received += 1
            if event is not None:
                loop.call_soon_threadsafe(self.on_event, event)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        self._client = client

    def stop(self) -> None:
        """Disconnect."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()


# ------------------------------------------------------------------ wiring


@dataclass(frozen=True)
class PushOptions:
    """How a VEN receives its events (``--push`` and its companions on the command line).

    ``safety_poll_s`` is the wall time between two reads of the events from the VTN when
    pushed; the webhook options are the callback server's address, certificate and key, the
    URL the VTN should call (default: from host and port) and the VEN's webhook key (hex, from
    ``drready vtn webhook-key``); ``mqtt_ca_file`` the CA of an ``mqtts://`` broker announced
    with ``ANONYMOUS`` (with ``CERTIFICATE``, ``GET /notifiers`` gives the CA).
    """

    mode: PushMode = "poll"
    safety_poll_s: float = 300.0
    callback_host: str = "127.0.0.1"
    callback_port: int = 0
    callback_cert: str | None = None
    callback_key: str | None = None
    callback_url: str | None = None
    webhook_key_hex: str | None = None
    mqtt_ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in PUSH_MODES:
            raise ValueError(f"mode: must be one of {', '.join(PUSH_MODES)}, got {self.mode!r}")
        if not 1 <= self.safety_poll_s <= 86_400:
            raise ValueError(f"safety_poll_s: must be within 1–86400 s, got {self.safety_poll_s}")
        if self.mode == "webhook" and (self.callback_cert is None or self.callback_key is None):
            raise ValueError("callback_cert: a webhook callback is HTTPS: give its cert and key")
        if self.webhook_key_hex is not None:
            bytes.fromhex(self.webhook_key_hex)  # ValueError names the bad hex


@dataclass
class PushLink:
    """A running push subscription (:func:`start_push`): its receiver, if any."""

    mode: PushMode
    receiver: WebhookReceiver | MqttReceiver | None = None

    def ready(self) -> bool:
        """Whether notifications can arrive now (an MQTT subscription acknowledged)."""
        if isinstance(self.receiver, MqttReceiver):
            return self.receiver.subscribed.is_set()
        return True

    async def stop(self) -> None:
        """Stop the receiver (the subscription at the VTN is replaced on the next start)."""
        if isinstance(self.receiver, WebhookReceiver):
            await self.receiver.stop()
        elif isinstance(self.receiver, MqttReceiver):
            self.receiver.stop()


async def start_push(shell: PollingVen, ven: VenClient, options: PushOptions) -> PushLink:
    """Register the VEN, subscribe and start the receiver (see the module docstring); returns
    the running :class:`PushLink`. ``mode="poll"`` does nothing.

    Raises
    ------
    VenError
        The VTN refused or could not be reached (the subscription, the topic names).
    ValueError
        The VTN offers no MQTT binding.
    """

    if options.mode == "poll":
        return PushLink("poll")
    for line in await shell.register():
        _log.info("%s", line)
    shell.registered = True
    if options.mode == "webhook":
        return await _start_webhook(shell, ven, options)
    return await _start_mqtt(shell, ven, options)


async def _start_webhook(shell: PollingVen, ven: VenClient, options: PushOptions) -> PushLink:
    if options.callback_cert is None or options.callback_key is None:
        raise ValueError("callback_cert: a webhook callback is HTTPS: give its cert and key")
    key = None if options.webhook_key_hex is None else bytes.fromhex(options.webhook_key_hex)
    receiver = WebhookReceiver(
        shell.push,
        certfile=options.callback_cert,
        keyfile=options.callback_key,
        host=options.callback_host,
        port=options.callback_port,
        signing_key=key,
        public_url=options.callback_url,
    )
    await receiver.start()
    try:
        for old in await ven.subscriptions(client_name=ven.ven_name):
            await ven.delete_subscription(old.id)
        await ven.subscribe(
            None,
            [ObjectType.EVENT],
            [Operation.CREATE, Operation.UPDATE],
            receiver.url,
            receiver.bearer_token,
        )
    except (VenError, ValueError):
        await receiver.stop()
        raise
    shell.full_poll_every_s = options.safety_poll_s
    _log.info("events pushed by webhook to %s", receiver.url)
    return PushLink("webhook", receiver)


def certificate_context(ca_cert: str, client_cert: str, client_key: str) -> ssl.SSLContext:
    """A TLS client context trusting ``ca_cert`` and presenting ``client_cert`` with
    ``client_key`` (PEM strings, as ``mqttNotifierAuthenticationCertificate`` carries them).
    :mod:`ssl` loads a key from a file only: it is written 0600 into a 0700 temporary
    directory and removed as soon as it is loaded. ValueError when the material is not PEM or
    the key does not match the certificate."""
    try:
        context = ssl.create_default_context(cadata=ca_cert)
        with tempfile.TemporaryDirectory(prefix="drready-mqtt-") as directory:
            cert_path = Path(directory) / "client.pem"
            key_path = Path(directory) / "client-key.pem"
            write_private_file(cert_path, client_cert.encode())
            write_private_file(key_path, client_key.encode())
            context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as err:
        raise ValueError(f"MQTT CERTIFICATE authentication: unusable material ({err})") from err
    return context


def _mqtt_tls(
    authentication: object, options: PushOptions
) -> tuple[ssl.SSLContext | None, str | None]:
    """The TLS context for the announced authentication (and the CA file for ANONYMOUS)."""
    method = authentication.get("method") if isinstance(authentication, dict) else None
    if method == "ANONYMOUS":
        return None, options.mqtt_ca_file
    if method == "CERTIFICATE" and isinstance(authentication, dict):
        parts = [authentication.get(k) for k in ("caCert", "clientCert", "clientKey")]
        if not all(isinstance(p, str) and p for p in parts):
            raise ValueError("--push mqtt: CERTIFICATE without caCert/clientCert/clientKey")
        ca, cert, key = (str(p) for p in parts)
        return certificate_context(ca, cert, key), None
    raise ValueError(f"--push mqtt: broker authentication {method!r} is not implemented")


async def _start_mqtt(shell: PollingVen, ven: VenClient, options: PushOptions) -> PushLink:
    notifiers = await ven.notifiers()
    binding = notifiers.get("MQTT")
    uris = binding.get("URIS") if isinstance(binding, dict) else None
    if not uris or not isinstance(binding, dict):
        raise ValueError("--push mqtt: the VTN offers no MQTT binding (GET /notifiers)")
    if ven.ven is None:
        raise VenConfigError("the VEN must be registered (ensure_ven) before subscribing")
    context, ca_file = _mqtt_tls(binding.get("authentication"), options)
    topics = await ven.notifier_topics(f"vens/{ven.ven.id}/events")
    receiver = MqttReceiver(
        shell.push,
        broker_url=str(uris[0]),
        topics=[topics.get("ALL") or topics["CREATE"]],
        ca_file=ca_file,
        tls_context=context,
    )
    receiver.start(asyncio.get_running_loop())
    shell.full_poll_every_s = options.safety_poll_s
    _log.info("events pushed by MQTT on %s", receiver.topics[0])
    return PushLink("mqtt", receiver)


async def start_push_or_poll(shell: PollingVen, ven: VenClient, options: PushOptions) -> PushLink:
    """:func:`start_push`, or — when the VTN cannot be subscribed to now (unreachable, no MQTT
    binding, a refused callback) — a warning and plain polling, so a VEN starts either way."""
    try:
        return await start_push(shell, ven, options)
    except (VenError, ValueError, OSError) as err:
        _log.warning("--push %s not set up (%s); polling instead", options.mode, err)
        return PushLink("poll")
