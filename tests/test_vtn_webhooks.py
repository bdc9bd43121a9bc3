"""Webhook delivery of the VTN: echo verification, HTTPS only, SSRF guard, HMAC signatures,
retries with backoff, privacy filter, and a publish that never blocks (C1, S1)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from drready.domain.time import zone
from drready.openadr.models import ObjectType, Operation, Subscription
from drready.openadr.vtn.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CallbackRejectedError,
    WebhookNotifier,
    verify_signature,
)
from drready.security.certs import write_bundle
from drready.security.tls import uvicorn_ssl_kwargs
from tests.https_helpers import serve

KEY = b"k" * 32
NOW = datetime(2026, 5, 11, 22, 0, tzinfo=zone("Asia/Tokyo"))


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.flaky_left = 2
        app = FastAPI()

        @app.get("/{path}")
        def echo(path: str, echo: str = "") -> Response:
            return PlainTextResponse(echo if path != "liar" else "something else")

        @app.post("/{path}")
        async def take(path: str, request: Request) -> Response:
            body = await request.body()
            if path == "flaky" and self.flaky_left > 0:
                self.flaky_left -= 1
                return Response(status_code=503)
            if path == "slow":
                time.sleep(0.5)
            self.got.append((path, dict(request.headers), body))
            return Response(status_code=200)

        self.app = app


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory):
    bundle = write_bundle(tmp_path_factory.mktemp("certs"))
    rec = Receiver()
    with serve(rec.app, **uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)) as port:
        yield rec, f"https://localhost:{port}", str(bundle.ca_cert)


def subscription(url: str, client_id: str = "ven-a", bearer: str | None = "tok") -> Subscription:
    return Subscription.model_validate(
        {
            "id": "sub-1",
            "created_date_time": NOW,
            "modification_date_time": NOW,
            "client_name": "cloud",
            "client_id": client_id,
            "object_operations": [
                {
                    "objects": ["EVENT"],
                    "operations": ["CREATE", "UPDATE"],
                    "callback_url": url,
                    "bearer_token": bearer,
                }
            ],
        }
    )


EVENT = {
    "id": "ev-1",
    "createdDateTime": "2026-05-11T22:00:00+09:00",
    "modificationDateTime": "2026-05-11T22:00:00+09:00",
    "objectType": "EVENT",
    "programID": "p-1",
    "targets": ["a", "secret"],
}


def notifier(subs: list[Subscription], ca: str, visible: Any = None, **kw: Any) -> WebhookNotifier:
    def default_visible(sub: Subscription, obj: dict[str, Any]) -> dict[str, Any] | None:
        return {**obj, "targets": ["a"]}  # target hiding: only what this client asked

    return WebhookNotifier(
        subscriptions=lambda: subs,
        visible_to=visible or default_visible,
        signing_key=KEY,
        verify=ca,
        allow_private_callbacks=True,
        base_delay_s=0.05,
        **kw,
    )


def test_echo_challenge_accepts_a_real_callback_and_refuses_others(receiver):
    _, base, ca = receiver
    n = notifier([], ca)
    n.verify_callback(f"{base}/cb")
    with pytest.raises(CallbackRejectedError, match="echo"):
        n.verify_callback(f"{base}/liar")
    with pytest.raises(CallbackRejectedError, match="https"):
        n.verify_callback(base.replace("https", "http") + "/cb")


def test_private_addresses_are_refused_by_default(receiver):
    _, base, ca = receiver
    n = notifier([], ca)
    n.allow_private_callbacks = False
    with pytest.raises(CallbackRejectedError, match="non-public"):
        n.verify_callback(f"{base}/cb")


def test_notification_is_signed_authorised_and_target_hidden(receiver):
    rec, base, ca = receiver
    rec.got.clear()
    n = notifier([subscription(f"{base}/cb")], ca)
    n.publish(Operation.CREATE, ObjectType.EVENT, dict(EVENT))
    n.publish(Operation.DELETE, ObjectType.EVENT, dict(EVENT))  # not subscribed
    n.publish(Operation.CREATE, ObjectType.REPORT, {"id": "r"})  # not subscribed
    n.drain()
    assert len(rec.got) == 1
    _, headers, body = rec.got[0]
    assert headers["authorization"] == "Bearer tok"
    assert verify_signature(
        KEY, headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()]
    )
    assert not verify_signature(
        b"x" * 32, headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()]
    )
    note = json.loads(body)
    assert note["objectType"] == "EVENT" and note["operation"] == "CREATE"
    assert note["object"]["targets"] == ["a"]  # "secret" hidden from this subscriber


def test_invisible_objects_are_not_sent(receiver):
    rec, base, ca = receiver
    rec.got.clear()
    n = notifier([subscription(f"{base}/cb")], ca, visible=lambda c, o: None)
    n.publish(Operation.CREATE, ObjectType.EVENT, dict(EVENT))
    n.drain()
    assert rec.got == [] and n.stats.filtered == 1


def test_failures_are_retried_with_backoff(receiver):
    rec, base, ca = receiver
    rec.got.clear()
    rec.flaky_left = 2
    n = notifier([subscription(f"{base}/flaky")], ca)
    n.publish(Operation.UPDATE, ObjectType.EVENT, dict(EVENT))
    n.drain()
    assert [p for p, _, _ in rec.got] == ["flaky"]
    assert n.stats.retried == 2 and n.stats.delivered == 1 and n.stats.failed == 0


def test_publish_never_blocks_on_a_slow_callback(receiver, tmp_path: Path):
    rec, base, ca = receiver
    rec.got.clear()
    n = notifier([subscription(f"{base}/slow")], ca)
    t0 = time.monotonic()
    for _ in range(3):
        n.publish(Operation.CREATE, ObjectType.EVENT, dict(EVENT))
    assert time.monotonic() - t0 < 0.1  # queued, not sent in the caller's thread
    n.drain(timeout_s=15)
    assert len(rec.got) == 3


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="signing_key"):
        WebhookNotifier(subscriptions=list, visible_to=lambda c, o: o, signing_key=b"short")


# --- the VTN with webhooks attached ---------------------------------------------------------


def test_vtn_delivers_subscribed_changes_with_privacy_and_refuses_bad_callbacks(receiver, tmp_path):
    from fastapi.testclient import TestClient

    from drready.openadr.vtn import VtnSettings, create_app
    from drready.openadr.vtn.webhook_setup import attach_webhooks
    from tests.test_vtn_api import fetch_token, make_registry

    rec, base, ca = receiver
    rec.got.clear()
    registry = make_registry()
    settings = VtnSettings(
        database_url=f"sqlite:///{tmp_path / 'vtn.db'}", base_url="https://vtn.test"
    )
    app = create_app(settings, registry, registry.token_service("https://vtn.test"))
    notifier = attach_webhooks(
        app, signing_key=KEY, verify=ca, allow_private_callbacks=True, base_delay_s=0.05
    )
    with TestClient(app) as client:
        h = {
            w: {"Authorization": f"Bearer {fetch_token(client, w)}"}
            for w in ("bl", "ven-a", "ven-b")
        }
        # BL grants target "area-1" to ven-a
        r = client.post(
            "/vens",
            headers=h["bl"],
            json={
                "objectType": "BL_VEN_REQUEST",
                "clientID": "ven-a",
                "venName": "ven-a",
                "targets": ["area-1"],
            },
        )
        assert r.status_code == 201, r.text
        prog = client.post("/programs", headers=h["bl"], json={"programName": "p"}).json()
        sub_body = {
            "clientName": "cloud",
            "programID": prog["id"],
            "targets": ["area-1"],
            "objectOperations": [
                {
                    "objects": ["EVENT"],
                    "operations": ["CREATE"],
                    "callbackUrl": f"{base}/a",
                    "bearerToken": "tok-a",
                }
            ],
        }
        assert client.post("/subscriptions", headers=h["ven-a"], json=sub_body).status_code == 201
        b_body = {
            **sub_body,
            "objectOperations": [{**sub_body["objectOperations"][0], "callbackUrl": f"{base}/b"}],
        }
        assert client.post("/subscriptions", headers=h["ven-b"], json=b_body).status_code == 201
        liar = {
            **sub_body,
            "objectOperations": [
                {**sub_body["objectOperations"][0], "callbackUrl": f"{base}/liar"}
            ],
        }
        r = client.post("/subscriptions", headers=h["ven-a"], json=liar)
        assert r.status_code == 400 and "echo" in r.json()["detail"]
        # a targeted event: only ven-a (granted area-1) is notified, with hidden targets
        ev = {"programID": prog["id"], "eventName": "dr", "targets": ["area-1", "area-9"]}
        assert client.post("/events", headers=h["bl"], json=ev).status_code == 201
        notifier.drain()
    paths = [p for p, _, _ in rec.got]
    assert paths == ["a"], paths
    note = json.loads(rec.got[0][2])
    assert note["object"]["targets"] == ["area-1"]
    assert rec.got[0][1]["authorization"] == "Bearer tok-a"
    notifier.close()
