"""MQTT with access control (issue 16 item 2): `drready vtn mqtt-config` writes a Mosquitto
broker's passwords and ACL; a broker of this test's own (a child process on a free loopback
port, never the system broker on 1883) enforces them: the VTN publishes with its own
credentials, a VEN reads its own topics, another VEN's credentials read nothing of them (not
even with ``#``), no VEN can forge a notification, and anonymous clients are refused."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from drready.openadr.push import PushOptions, start_push
from drready.openadr.ven import VenClient
from drready.openadr.vtn import VtnSettings, create_app
from drready.openadr.vtn.mqtt_access import mosquitto_hash, mosquitto_verify
from drready.security.certs import write_bundle
from drready.security.tls import uvicorn_ssl_kwargs
from tests.https_helpers import free_port, serve
from tests.test_ven_push import QuietVen
from tests.test_vtn_api import SECRETS, fetch_token, make_registry

MOSQUITTO = "/usr/sbin/mosquitto"
CLI = (sys.executable, "-m", "drready.cli")


def test_password_hash_is_mosquittos_own_format(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd not installed (apt-get install mosquitto)")
    passwd = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(passwd), "alice", "s3cret"], check=True)
    written = passwd.read_text().strip().split(":", 1)[1]
    assert written.startswith("$7$101$")
    assert mosquitto_verify("s3cret", written)  # mosquitto_passwd's hash, our check
    assert not mosquitto_verify("s3cret!", written)
    salt = bytes(range(12))
    assert mosquitto_hash("s3cret", salt=salt) != mosquitto_hash("s3cret", salt=bytes(12))


class Listener:
    """A paho client with credentials, collecting what arrives on some topics."""

    def __init__(self, port: int, user: str | None, password: str | None, *topics: str) -> None:
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.refused: Any = None
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.lock = threading.Lock()
        client = Client(callback_api_version=CallbackAPIVersion.VERSION2)
        if user is not None:
            client.username_pw_set(user, password)

        def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
            if reason.is_failure:
                self.refused = reason
                self.connected.set()
                return
            self.connected.set()
            if topics:
                c.subscribe([(t, 1) for t in topics])
            else:
                self.subscribed.set()

        def on_subscribe(c: Any, u: Any, mid: Any, codes: Any, p: Any) -> None:
            self.subscribed.set()

        def on_message(c: Any, u: Any, msg: Any) -> None:
            with self.lock:
                self.messages.append((msg.topic, json.loads(msg.payload)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        assert self.connected.wait(5), "no CONNACK"
        self.client = client

    def got(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """`drready vtn mqtt-config` output served by our own Mosquitto child process."""
    if not os.path.exists(MOSQUITTO):
        pytest.skip(f"{MOSQUITTO} not installed (apt-get install mosquitto)")
    registry = make_registry()  # bl (role bl), ven-a, ven-b (role ven)
    clients = tmp_path / "clients.toml"
    registry.save(clients)
    port = free_port()
    out = tmp_path / "broker"
    options = ["--out", str(out), "--clients-file", str(clients), "--port", str(port)]
    made = subprocess.run(
        [*CLI, "vtn", "mqtt-config", *options],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("DRREADY_TOKEN_KEY")},
    )
    assert made.returncode == 0, made.stderr
    for path in (out / "mosquitto.conf", out / "passwd", out / "acl", out / "vtn.password"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(out / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr and proc.stderr.read()
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.05)
        yield port, out
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _password(out: Path, client: str) -> str:
    return (out / "clients" / f"{client}.password").read_text().strip()


def test_a_ven_reads_its_own_topics_and_no_other_credentials_can(
    tmp_path: Path, broker: tuple[int, Path]
) -> None:
    port, out = broker
    # anonymous and wrong passwords are refused at CONNECT
    assert Listener(port, None, None).refused is not None
    assert Listener(port, "ven-a", "guess").refused is not None

    registry = make_registry()
    settings = VtnSettings(
        database_url=f"sqlite:///{tmp_path / 'vtn.db'}",
        base_url="https://vtn.test",
        mqtt_broker_url=f"mqtt://127.0.0.1:{port}",
        mqtt_username="drready-vtn",
        mqtt_password_file=str(out / "vtn.password"),
    )
    app = create_app(settings, registry, registry.token_service("https://vtn.test"))
    listeners: list[Listener] = []
    with TestClient(app) as client:
        h = {w: {"Authorization": f"Bearer {fetch_token(client, w)}"} for w in ("bl", "ven-a")}
        notifiers = client.get("/notifiers", headers=h["ven-a"]).json()
        assert notifiers["MQTT"]["authentication"] == {
            "method": "OAUTH2_BEARER_TOKEN",
            "username": "{clientID}",
        }
        ven_ids = {}
        for who, target in (("ven-a", "area-1"), ("ven-b", "area-2")):
            body = {"objectType": "BL_VEN_REQUEST", "clientID": who, "venName": who}
            r = client.post("/vens", headers=h["bl"], json={**body, "targets": [target]})
            ven_ids[who] = r.json()["id"]
        path = f"/notifiers/mqtt/topics/vens/{ven_ids['ven-a']}/events"
        topics = client.get(path, headers=h["ven-a"]).json()["topics"]
        assert topics["ALL"].startswith("clients/ven-a/")

        own = Listener(port, "ven-a", _password(out, "ven-a"), topics["ALL"])
        thief = Listener(port, "ven-b", _password(out, "ven-b"), topics["ALL"], "#", "events/#")
        general_by_ven = Listener(port, "ven-a", _password(out, "ven-a"), "events/#")
        bl = Listener(port, "bl", _password(out, "bl"), "events/#")
        listeners += [own, thief, general_by_ven, bl]
        assert all(x.subscribed.wait(5) for x in listeners)
        # ven-b cannot forge a notification on ven-a's topic
        forger = Listener(port, "ven-b", _password(out, "ven-b"))
        listeners.append(forger)
        forger.client.publish(topics["CREATE"], b'{"forged": true}', qos=1).wait_for_publish(2)

        prog = client.post("/programs", headers=h["bl"], json={"programName": "p"}).json()
        event = {"programID": prog["id"], "eventName": "dr", "targets": ["area-1", "area-9"]}
        created = client.post("/events", headers=h["bl"], json=event).json()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (own.got() and bl.got()):
            time.sleep(0.02)
        time.sleep(0.3)  # what the others would get has arrived by now
    for listener in listeners:
        listener.close()

    assert [(t, m["object"]["id"]) for t, m in own.got()] == [(topics["CREATE"], created["id"])]
    assert own.got()[0][1]["object"]["targets"] == ["area-1"]  # target hiding
    # another VEN's credentials, even with "#": only its own subtree (the untargeted program),
    # nothing of ven-a's topics, not the event targeted at ven-a, not the forged message
    assert thief.got(), "ven-b's own topics should reach it"
    assert all(t.startswith("clients/ven-b/") for t, _ in thief.got()), thief.got()
    assert all(m["objectType"] == "PROGRAM" for _, m in thief.got())
    assert general_by_ven.got() == []  # the general topics carry every target: BL only
    assert [m["object"]["targets"] for _, m in bl.got()] == [["area-1", "area-9"]]


def test_a_push_driven_ven_gets_its_event_by_mqtt_without_a_poll(
    tmp_path: Path, broker: tuple[int, Path]
) -> None:
    """`--push mqtt` end to end: the VEN logs in with its own broker credentials, finds its
    topic at the VTN, and the pushed event reaches its core without a read of the events."""
    port, out = broker
    bundle = write_bundle(tmp_path / "certs")
    registry = make_registry()
    settings = VtnSettings(
        database_url=f"sqlite:///{tmp_path / 'vtn.db'}",
        base_url="https://x",
        mqtt_broker_url=f"mqtt://127.0.0.1:{port}",
        mqtt_username="drready-vtn",
        mqtt_password_file=str(out / "vtn.password"),
    )
    app = create_app(settings, registry, registry.token_service("https://x"))
    ca = str(bundle.ca_cert)
    with serve(app, **uvicorn_ssl_kwargs(bundle.server_cert, bundle.server_key)) as vtn_port:
        base = f"https://localhost:{vtn_port}"

        async def scenario() -> tuple[QuietVen, str]:
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as http:
                form = {"grant_type": "client_credentials", "client_id": "bl"}
                answer = await http.post(
                    f"{base}/auth/token", data={**form, "client_secret": SECRETS["bl"]}
                )
                bl = {"Authorization": f"Bearer {answer.json()['access_token']}"}
                ven_body = {"objectType": "BL_VEN_REQUEST", "clientID": "ven-a"}
                await http.post(
                    f"{base}/vens",
                    headers=bl,
                    json={**ven_body, "venName": "ven-a", "targets": ["area-1"]},
                )
                program = await http.post(
                    f"{base}/programs", headers=bl, json={"programName": "DRREADY"}
                )
                ven = VenClient(base, "ven-a", SECRETS["ven-a"], verify=ca, ven_name="ven-a")
                shell = QuietVen(ven)
                options = PushOptions(
                    mode="mqtt", safety_poll_s=3600, mqtt_password=_password(out, "ven-a")
                )
                stop_push = await start_push(shell, ven, options)
                task = asyncio.create_task(shell.run(interval_s=60))
                while shell.full_reads < 1 or shell.core.busy:
                    await asyncio.sleep(0.01)
                while not stop_push.ready():  # the receiver's subscription acknowledged
                    await asyncio.sleep(0.01)
                event = {"programID": program.json()["id"], "targets": ["area-1", "area-9"]}
                created = await http.post(f"{base}/events", headers=bl, json=event)
                event_id = created.json()["id"]
                deadline = time.monotonic() + 5
                while shell.core.phase(event_id) is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                shell.stop()
                await task
                await stop_push.stop()
                await ven.close()
                return shell, event_id

        shell, event_id = asyncio.run(scenario())
    assert shell.core.phase(event_id) is not None  # pushed through the broker to the core
    assert shell.full_reads == 1
