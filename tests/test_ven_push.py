"""A push-driven VEN (issue 16 item 1): a :class:`PollingVen` subscribed by webhook to a real
VTN over HTTPS gets a new event without reading the events again; the notification goes through
the same ``VenCore.handle`` (``Polled``) a poll does, and a forged or unsigned notification is
refused by its callback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import ssl
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from drready.openadr import ven_core as vc
from drready.openadr.models import Event
from drready.openadr.push import PushOptions, start_push
from drready.openadr.ven import PollingVen, VenClient
from drready.openadr.vtn import VtnSettings, create_app
from drready.openadr.vtn.webhook_setup import attach_webhooks
from drready.security.certs import write_bundle
from drready.security.tls import uvicorn_ssl_kwargs
from tests.https_helpers import serve
from tests.test_vtn_api import SECRETS, make_registry

MASTER = b"m" * 48


class QuietVen(PollingVen):
    """A VEN with one resource and no units: it records how often it read the events."""

    def __init__(self, ven: VenClient) -> None:
        super().__init__(
            ven,
            vc.VenCore("ven-a", power_interval=timedelta(minutes=1)),
            program_name="DRREADY",
            log=logging.getLogger("test.push"),
        )
        self.full_reads = 0

    @property
    def resource_names(self) -> list[str]:
        return ["unit-1"]

    async def register(self) -> list[str]:
        await self.ven.ensure_ven()
        return []

    async def _work(self, action: vc.UnitWork) -> vc.Input:
        raise AssertionError(f"no unit work expected, got {action}")

    async def _events(self, program_id: str) -> list[Event]:
        self.full_reads += 1
        return await super()._events(program_id)


@pytest.fixture
def vtn(tmp_path: Path):
    bundle = write_bundle(tmp_path / "certs")
    registry = make_registry()
    settings = VtnSettings(database_url=f"sqlite:///{tmp_path / 'vtn.db'}", base_url="https://x")
    app = create_app(settings, registry, registry.token_service("https://x"))
    notifier = attach_webhooks(
        app,
        signing_key=MASTER,
        verify=str(bundle.ca_cert),
        allow_private_callbacks=True,
        per_client_keys=True,
    )
    with serve(app, **uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)) as port:
        yield f"https://localhost:{port}", bundle
    notifier.close()


def test_a_webhook_pushes_the_event_to_the_core_without_a_poll(vtn: Any) -> None:
    base, bundle = vtn
    ca = str(bundle.ca_cert)
    client_key = hmac.new(MASTER, b"drready-webhook-v1:ven-a", hashlib.sha256).hexdigest()

    async def scenario() -> tuple[QuietVen, Event, dict[str, int]]:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as http:
            form = {"grant_type": "client_credentials", "client_id": "bl"}
            token = (
                await http.post(f"{base}/auth/token", data={**form, "client_secret": SECRETS["bl"]})
            ).json()["access_token"]
            bl = {"Authorization": f"Bearer {token}"}
            program = (
                await http.post(f"{base}/programs", headers=bl, json={"programName": "DRREADY"})
            ).json()
            ven = VenClient(base, "ven-a", SECRETS["ven-a"], verify=ca, ven_name="ven-a")
            shell = QuietVen(ven)
            options = PushOptions(
                mode="webhook",
                safety_poll_s=3600,
                callback_cert=str(bundle.server_cert),
                callback_key=str(bundle.server_key),
                webhook_key_hex=client_key,
            )
            stop_push = await start_push(shell, ven, options)
            task = asyncio.create_task(shell.run(interval_s=60))
            while shell.full_reads < 1 or shell.core.busy:  # the first poll reads everything
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            event = {"programID": program["id"], "eventName": "not-ours", "intervals": []}
            created = Event.model_validate(
                (await http.post(f"{base}/events", headers=bl, json=event)).json()
            )
            deadline = time.monotonic() + 5
            while shell.core.phase(created.id) is None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            # a notification that is not signed with ven-a's key is refused by the callback
            subs = await ven.subscriptions()
            url = subs[0].object_operations[0].callback_url
            bearer = subs[0].object_operations[0].bearer_token
            forged = json.dumps(
                {
                    "objectType": "EVENT",
                    "operation": "CREATE",
                    "object": {
                        **created.model_dump(mode="json", by_alias=True, exclude_none=True),
                        "id": "forged",
                    },
                }
            ).encode()
            stamp = str(int(time.time()))
            bad = hmac.new(MASTER, stamp.encode() + b"." + forged, hashlib.sha256).hexdigest()
            answers = {}
            for name, headers in (
                ("unsigned", {"Authorization": f"Bearer {bearer}"}),
                (
                    "master-key",
                    {
                        "Authorization": f"Bearer {bearer}",
                        "X-DRReady-Timestamp": stamp,
                        "X-DRReady-Signature": "sha256=" + bad,
                    },
                ),
                ("no-bearer", {}),
            ):
                r = await http.post(url, content=forged, headers=headers)
                answers[name] = r.status_code
            await asyncio.sleep(0.1)
            shell.stop()
            await task
            await stop_push.stop()
            await ven.close()
            return shell, created, answers

    shell, created, answers = asyncio.run(scenario())
    assert shell.core.phase(created.id) is not None  # the core handled the pushed event
    assert shell.full_reads == 1  # … without reading the events from the VTN again
    assert answers == {"unsigned": 401, "master-key": 401, "no-bearer": 401}
    assert shell.core.phase("forged") is None
