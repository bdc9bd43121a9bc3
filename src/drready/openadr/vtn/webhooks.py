"""Webhook notifications of the VTN: echo-verified callbacks, signed, retried (C1, S1).

Implements the :class:`~drready.openadr.vtn.notify.Notifier` protocol and the webhook security
rules of OpenADR 3.1 (Definition.md, "Webhooks"):

* A callback URL must be HTTPS and is **verified before use**: the VTN GETs it with a random
  ``?echo=`` challenge and requires a 200 whose body is the challenge
  (:meth:`WebhookNotifier.verify_callback`; the subscription routes call it and refuse the
  subscription when it fails). Loopback, private and reserved addresses are refused unless the
  VTN is configured for local development (``allow_private_callbacks``). Redirects are never
  followed; every request has a timeout.
* :meth:`WebhookNotifier.publish` never blocks: it queues the change and returns. A worker
  thread finds the subscriptions whose ``objectOperations`` (and ``programID``) match, applies
  the subscriber's object privacy through the ``visible_to`` callable (target matching and
  hiding), and POSTs a :class:`~drready.openadr.models.Notification`.
* Each POST carries ``Authorization: Bearer <subscription bearerToken>`` when the subscription
  gave one, and the headers ``X-DRReady-Timestamp`` (Unix seconds) and ``X-DRReady-Signature``
  = ``sha256=`` + hex HMAC-SHA256 over ``timestamp + "." + body`` with the VTN's webhook
  signing key (``DRREADY_WEBHOOK_KEY``), so a VEN can check origin and freshness. With
  ``per_client_keys`` (what ``drready vtn serve`` uses) each subscriber's notifications are
  signed with its own key, :func:`webhook_key_for` (HMAC-SHA256 of the client id under the
  VTN's key; ``drready vtn webhook-key CLIENT_ID`` prints it): a VEN given its key cannot sign
  notifications for another VEN.
* The address check runs again before every POST (the host is resolved again), so a name that
  resolved to a public address at subscription time and to a private one later (DNS
  rebinding) is not called. Redirects are never followed: a 3xx is a refusal.
* The callbacks of one change are called concurrently (``concurrency`` threads; 100 VENs are
  not called one after the other); the next change starts once every callback of this one
  answered or gave up, so a subscriber sees a CREATE before the UPDATE that follows it.
* Failed deliveries (timeouts, connection errors, 5xx, 429) are retried with exponential backoff
  (``base_delay_s`` · 2ⁿ, at most ``max_attempts``); 4xx other than 429 are not retried.
  Delivery outcomes are counted in :class:`WebhookStats`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import queue
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from drready.openadr.models import Notification, ObjectType, Operation, Subscription, to_wire

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-DRReady-Signature"
TIMESTAMP_HEADER = "X-DRReady-Timestamp"


WEBHOOK_KEY_LABEL = b"drready-webhook-v1:"
"""Domain-separation prefix of :func:`webhook_key_for`."""


class CallbackRejectedError(ValueError):
    """A callback URL failed the rules or the echo challenge (names why)."""


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_key_for(master_key: bytes, client_id: str) -> bytes:
    """The signing key of ``client_id``'s notifications: HMAC-SHA256(master, label + id)."""
    return hmac.new(master_key, WEBHOOK_KEY_LABEL + client_id.encode(), hashlib.sha256).digest()


def non_public_address(host: str, port: int) -> str | None:
    """The first address ``host`` resolves to that is not globally routable (loopback,
    private, link-local, shared, reserved, unspecified — IPv4-mapped IPv6 judged as the IPv4
    address it carries), or None when every address is public.

    Raises
    ------
    CallbackRejectedError
        The host does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as err:
        raise CallbackRejectedError(f"callbackUrl host {host!r} does not resolve") from err
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            return str(ip)
    return None


def verify_signature(key: bytes, timestamp: str, body: bytes, header: str) -> bool:
    """What a VEN does with a notification: constant-time check of the signature."""
    return hmac.compare_digest(sign(key, timestamp, body), header)


@dataclass
class WebhookStats:
    """Delivery counters."""

    queued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    filtered: int = 0


@dataclass
class WebhookNotifier:
    """Queues VTN changes and delivers them to subscribed callbacks.

    Parameters
    ----------
    subscriptions : callable
        Returns the current subscriptions (read fresh for every change).
    visible_to : callable
        ``visible_to(subscription, wire_object)`` → the object as the subscription's client may
        see it with the subscription's targets (targets hidden), or None when it may not.
    signing_key : bytes
        HMAC key of the signature header (at least 32 bytes).
    verify : ssl.SSLContext | bool | str
        TLS verification of callbacks (a CA bundle for private PKIs).
    """

    subscriptions: Callable[[], list[Subscription]]
    visible_to: Callable[[Subscription, dict[str, Any]], dict[str, Any] | None]
    signing_key: bytes
    verify: ssl.SSLContext | bool | str = True
    timeout_s: float = 10.0
    max_attempts: int = 5
    base_delay_s: float = 0.5
    allow_private_callbacks: bool = False
    per_client_keys: bool = False
    concurrency: int = 16
    stats: WebhookStats = field(default_factory=WebhookStats)
    _queue: queue.Queue[tuple[Operation, ObjectType, dict[str, Any]] | None] = field(
        default_factory=queue.Queue
    )
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if len(self.signing_key) < 32:
            raise ValueError("signing_key must be at least 32 bytes")
        if not 1 <= self.max_attempts <= 20:
            raise ValueError(f"max_attempts must be within 1–20, got {self.max_attempts}")
        if not 1 <= self.concurrency <= 256:
            raise ValueError(f"concurrency must be within 1–256, got {self.concurrency}")
        self._stats_lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _client(self) -> httpx.Client:
        verify = (
            ssl.create_default_context(cafile=self.verify)
            if isinstance(self.verify, str)
            else self.verify
        )
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        return httpx.Client(
            verify=verify, timeout=self.timeout_s, follow_redirects=False, limits=limits
        )

    # --- subscription time -----------------------------------------------------------------
    def check_url(self, url: str) -> None:
        """HTTPS, a host, and no private/loopback/reserved address unless allowed."""
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise CallbackRejectedError(f"callbackUrl must use https, got {parts.scheme!r}")
        host = parts.hostname
        if not host:
            raise CallbackRejectedError("callbackUrl has no host")
        if self.allow_private_callbacks:
            return
        try:
            port = parts.port or 443
        except ValueError as err:
            raise CallbackRejectedError(f"callbackUrl has an invalid port: {err}") from err
        bad = non_public_address(host, port)
        if bad is not None:
            raise CallbackRejectedError(
                f"callbackUrl resolves to a non-public address {bad} (refused, SSRF guard; "
                "the VTN operator may allow it with --allow-private-callbacks)"
            )

    def verify_callback(self, url: str) -> None:
        """The echo challenge of Definition.md; raises :class:`CallbackRejectedError`."""
        self.check_url(url)
        challenge = secrets.token_urlsafe(24)
        parts = urlsplit(url)
        query = (parts.query + "&" if parts.query else "") + urlencode({"echo": challenge})
        probe = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        try:
            with self._client() as client:
                res = client.get(probe)
        except httpx.HTTPError as err:
            raise CallbackRejectedError(f"callbackUrl did not answer the echo: {err}") from err
        body = res.text.strip().strip('"')
        if res.status_code != 200 or body != challenge:
            raise CallbackRejectedError(
                f"callbackUrl failed the echo challenge (status {res.status_code})"
            )

    # --- the Notifier protocol -------------------------------------------------------------
    def publish(
        self, operation: Operation, object_type: ObjectType, wire_object: dict[str, Any]
    ) -> None:
        """Queue the change; a worker thread delivers it."""
        self._ensure_worker()
        self._count("queued")
        self._queue.put((operation, object_type, wire_object))

    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="webhooks", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout_s``) and stop the worker."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout_s)

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until everything queued so far has been handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _work(self) -> None:
        with (
            self._client() as client,
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook-post") as pool,
        ):
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    self._deliver_all(client, pool, *item)
                except Exception:  # a worker must survive anything
                    log.exception("webhook delivery crashed")
                finally:
                    self._queue.task_done()

    def _matching(
        self, op: Operation, kind: ObjectType, obj: dict[str, Any]
    ) -> list[tuple[Subscription, str, str | None]]:
        out = []
        for sub in self.subscriptions():
            if sub.program_id is not None and obj.get("programID") not in (None, sub.program_id):
                continue
            for oo in sub.object_operations:
                if kind in oo.objects and op in oo.operations:
                    out.append((sub, oo.callback_url, oo.bearer_token))
        return out

    def _deliver_all(
        self,
        client: httpx.Client,
        pool: ThreadPoolExecutor,
        op: Operation,
        kind: ObjectType,
        obj: dict[str, Any],
    ) -> None:
        posts: list[tuple[str, str | None, bytes, bytes]] = []
        for sub, url, bearer in self._matching(op, kind, obj):
            seen = self.visible_to(sub, obj)
            if seen is None:
                self._count("filtered")
                continue
            note = Notification.model_validate(
                {
                    "object_type": kind,
                    "operation": op,
                    "object": seen,
                    "targets": seen.get("targets"),
                }
            )
            body = json.dumps(to_wire(note), separators=(",", ":")).encode()
            key = (
                webhook_key_for(self.signing_key, sub.client_id)
                if self.per_client_keys
                else self.signing_key
            )
            posts.append((url, bearer, body, key))
        if len(posts) == 1:
            self._post(client, *posts[0])
            return
        for done in [pool.submit(self._post, client, *post) for post in posts]:
            done.result()

    def _post(
        self, client: httpx.Client, url: str, bearer: str | None, body: bytes, key: bytes
    ) -> None:
        try:
            self.check_url(url)  # again: the name may resolve elsewhere now (DNS rebinding)
        except CallbackRejectedError as err:
            log.warning("webhook %s not called: %s", url, err)
            self._count("failed")
            return
        for attempt in range(self.max_attempts):
            ts = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: ts,
                SIGNATURE_HEADER: sign(key, ts, body),
            }
            if bearer:
                headers["Authorization"] = f"Bearer {bearer}"
            try:
                res = client.post(url, content=body, headers=headers)
                if res.status_code < 300:
                    self._count("delivered")
                    return
                if res.status_code < 500 and res.status_code != 429:
                    break  # the receiver refuses it: retrying will not help
            except httpx.HTTPError as err:
                log.info("webhook %s attempt %d failed: %s", url, attempt + 1, err)
            if attempt + 1 < self.max_attempts:
                self._count("retried")
                time.sleep(self.base_delay_s * 2**attempt)
        self._count("failed")
