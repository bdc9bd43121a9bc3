"""MQTT with access control (issue 16 item 2): `drready vtn mqtt-config` writes a Mosquitto
broker's CA, TLS certificate, configuration (mutual TLS, the certificate's CN as user name) and
ACL; `vtn serve` gives each client its certificate through GET /notifiers (OpenADR 3.1
``CERTIFICATE`` authentication) and publishes with its own. A broker of this test's own (a
child process on a free loopback port, never the system broker on 1883) enforces them: a VEN
connecting with what /notifiers gave it reads its own topics, another VEN's certificate reads
nothing of them (not even with ``#``), no VEN can forge a notification, and clients without a
certificate of the broker CA (none, anonymous, another CA's with the right CN) are refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
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
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from drready.cli import app
from drready.openadr.push import PushOptions, certificate_context, start_push
from drready.openadr.ven import VenClient
from drready.openadr.vtn import VtnSettings, create_app
from drready.openadr.vtn.mqtt_access import load_or_make_ca
from drready.openadr.vtn.mqtt_certs import RENEW_BEFORE_DAYS, MqttCertIssuer
from drready.security.certs import cert_to_pem, make_certificate, write_bundle
from drready.security.tls import uvicorn_ssl_kwargs
from tests.https_helpers import free_port, serve
from tests.test_ven_push import QuietVen
from tests.test_vtn_api import SECRETS, fetch_token, make_registry, ok

MOSQUITTO = "/usr/sbin/mosquitto"
CLI = (sys.executable, "-m", "drready.cli")


def _cn(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _spki(pem: str) -> bytes:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_the_issuer_keeps_each_key_and_renews_the_certificate(tmp_path: Path) -> None:
    """One key per client, 0600, the same across calls and processes; the certificate is issued
    again for that key when it nears its end or when the CA changed; the VTN's name is not
    given to a client."""
    ca_dir = tmp_path / "ca"
    ca_key, ca_cert = load_or_make_ca(ca_dir)
    store = tmp_path / "issued"
    issuer = MqttCertIssuer(ca_dir / "ca.pem", ca_dir / "ca-key.pem", store)
    first = issuer.material("ven-a")
    assert _cn(first.client_cert) == "ven-a" and first.ca_cert == cert_to_pem(ca_cert).decode()
    assert stat.S_IMODE((store / "ven-a-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    other = MqttCertIssuer(ca_dir / "ca.pem", ca_dir / "ca-key.pem", store)  # another worker
    assert other.material("ven-a") == first and other.issued == 0
    assert _spki(issuer.material("ven-b").client_key) != _spki(first.client_key)
    with pytest.raises(ValueError, match="VTN's own"):
        issuer.material("drready-vtn")
    with pytest.raises(ValueError, match="client_id"):
        issuer.material("a/b")

    # a certificate within the renewal margin of its end: renewed, same key
    key = serialization.load_pem_private_key(first.client_key.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    _, short = make_certificate(
        ca_key,
        ca_cert,
        "ven-a",
        dns_names=(),
        ip_addresses=(),
        client=True,
        days=RENEW_BEFORE_DAYS - 1,
        key=key,
    )
    (store / "ven-a.pem").write_bytes(cert_to_pem(short))
    renewed = MqttCertIssuer(ca_dir / "ca.pem", ca_dir / "ca-key.pem", store)
    again = renewed.material("ven-a")
    assert renewed.issued == 1 and again.client_key == first.client_key
    not_after = x509.load_pem_x509_certificate(again.client_cert.encode()).not_valid_after_utc
    assert not_after - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)

    # a new CA (mqtt-config run on an empty directory): every certificate is issued again
    new_ca = tmp_path / "ca2"
    load_or_make_ca(new_ca)
    moved = MqttCertIssuer(new_ca / "ca.pem", new_ca / "ca-key.pem", store)
    third = moved.material("ven-a")
    assert moved.issued == 1 and third.client_key == first.client_key
    chain = x509.load_pem_x509_certificate(third.client_cert.encode())
    chain.verify_directly_issued_by(
        x509.load_pem_x509_certificate((new_ca / "ca.pem").read_bytes())
    )

    os.chmod(ca_dir / "ca-key.pem", 0o644)
    with pytest.raises(ValueError, match="ca_key_file"):
        MqttCertIssuer(ca_dir / "ca.pem", ca_dir / "ca-key.pem", store)


class Listener:
    """A paho client over TLS with a client certificate (or none), collecting what arrives."""

    def __init__(self, port: int, context: ssl.SSLContext | None, *topics: str) -> None:
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.accepted = False
        self.answered = threading.Event()
        self.subscribed = threading.Event()
        self.lock = threading.Lock()
        client = Client(callback_api_version=CallbackAPIVersion.VERSION2)
        if context is not None:
            client.tls_set_context(context)

        def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
            self.accepted = not reason.is_failure
            self.answered.set()
            if self.accepted and topics:
                c.subscribe([(t, 1) for t in topics])
            elif self.accepted:
                self.subscribed.set()

        def on_disconnect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
            self.answered.set()  # closed before or instead of a CONNACK

        def on_subscribe(c: Any, u: Any, mid: Any, codes: Any, p: Any) -> None:
            self.subscribed.set()

        def on_message(c: Any, u: Any, msg: Any) -> None:
            with self.lock:
                self.messages.append((msg.topic, json.loads(msg.payload)))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        self.client = client
        try:
            client.connect("127.0.0.1", port)
        except (OSError, ssl.SSLError):
            self.answered.set()  # the TLS handshake refused us
            return
        client.loop_start()
        self.answered.wait(5)
        if not self.accepted:
            client.loop_stop()

    def got(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _context(material: dict[str, str]) -> ssl.SSLContext:
    return certificate_context(material["caCert"], material["clientCert"], material["clientKey"])


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
    assert f"--mqtt-ca-key {out / 'ca-key.pem'}" in made.stdout
    for name in ("mosquitto.conf", "acl", "ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
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


def _settings(tmp_path: Path, port: int, out: Path, base_url: str) -> VtnSettings:
    return VtnSettings(
        database_url=f"sqlite:///{tmp_path / 'vtn.db'}",
        base_url=base_url,
        mqtt_broker_url=f"mqtts://localhost:{port}",
        mqtt_ca_file=str(out / "ca.pem"),
        mqtt_ca_key_file=str(out / "ca-key.pem"),
        mqtt_cert_dir=str(tmp_path / "issued"),
    )


def test_a_ven_reads_its_own_topics_and_no_other_certificate_can(
    tmp_path: Path, broker: tuple[int, Path]
) -> None:
    port, out = broker
    trust_only = ssl.create_default_context(cafile=str(out / "ca.pem"))
    # no TLS, TLS without a client certificate, a certificate of another CA named ven-a
    assert not Listener(port, None).accepted
    assert not Listener(port, trust_only).accepted
    foreign = write_bundle(tmp_path / "foreign", client_names=("ven-a",))
    impostor = ssl.create_default_context(cafile=str(out / "ca.pem"))
    impostor.load_cert_chain(foreign.client("ven-a").cert, foreign.client("ven-a").key)
    assert not Listener(port, impostor).accepted

    registry = make_registry()
    app = create_app(
        _settings(tmp_path, port, out, "https://vtn.test"),
        registry,
        registry.token_service("https://vtn.test"),
    )
    listeners: list[Listener] = []
    with TestClient(app) as client:
        h = {w: {"Authorization": f"Bearer {fetch_token(client, w)}"} for w in SECRETS}
        answers = {who: client.get("/notifiers", headers=h[who]) for who in SECRETS}
        assert answers["ven-a"].headers["cache-control"] == "no-store"
        bodies = {who: ok(a, 200, "notifiersResponse") for who, a in answers.items()}  # 3.1.0
        auth = {who: b["MQTT"]["authentication"] for who, b in bodies.items()}
        assert {a["method"] for a in auth.values()} == {"CERTIFICATE"}
        assert {who: _cn(a["clientCert"]) for who, a in auth.items()} == {w: w for w in SECRETS}
        again = client.get("/notifiers", headers=h["ven-a"]).json()["MQTT"]["authentication"]
        assert again == auth["ven-a"]  # issued once, the key stays
        ven_ids = {}
        for who, target in (("ven-a", "area-1"), ("ven-b", "area-2")):
            body = {"objectType": "BL_VEN_REQUEST", "clientID": who, "venName": who}
            r = client.post("/vens", headers=h["bl"], json={**body, "targets": [target]})
            ven_ids[who] = r.json()["id"]
        path = f"/notifiers/mqtt/topics/vens/{ven_ids['ven-a']}/events"
        topics = client.get(path, headers=h["ven-a"]).json()["topics"]
        assert topics["ALL"].startswith("clients/ven-a/")

        own = Listener(port, _context(auth["ven-a"]), topics["ALL"])
        thief = Listener(port, _context(auth["ven-b"]), topics["ALL"], "#", "events/#")
        general_by_ven = Listener(port, _context(auth["ven-a"]), "events/#")
        bl = Listener(port, _context(auth["bl"]), "events/#")
        listeners += [own, thief, general_by_ven, bl]
        assert all(x.accepted for x in listeners)
        assert all(x.subscribed.wait(5) for x in listeners)
        # ven-b cannot forge a notification on ven-a's topic
        forger = Listener(port, _context(auth["ven-b"]))
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
    # another VEN's certificate, even with "#": only its own subtree (the untargeted program),
    # nothing of ven-a's topics, not the event targeted at ven-a, not the forged message
    assert thief.got(), "ven-b's own topics should reach it"
    assert all(t.startswith("clients/ven-b/") for t, _ in thief.got()), thief.got()
    assert all(m["objectType"] == "PROGRAM" for _, m in thief.got())
    assert general_by_ven.got() == []  # the general topics carry every target: BL only
    assert [m["object"]["targets"] for _, m in bl.got()] == [["area-1", "area-9"]]


def test_a_push_driven_ven_gets_its_event_by_mqtt_without_a_poll(
    tmp_path: Path, broker: tuple[int, Path]
) -> None:
    """`--push mqtt` end to end: the VEN connects with the certificate GET /notifiers gave it,
    finds its topic at the VTN, and the pushed event reaches its core without a read of the
    events."""
    port, out = broker
    bundle = write_bundle(tmp_path / "certs")
    registry = make_registry()
    settings = _settings(tmp_path, port, out, "https://x")
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
                options = PushOptions(mode="mqtt", safety_poll_s=3600)
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


def test_vtn_serve_names_the_mqtt_option_at_fault(tmp_path: Path) -> None:
    """A CA key without its certificate, certificate authentication on plain mqtt://, and a CA
    key others can read: exit 2 naming the option, before anything serves."""
    ca_dir = tmp_path / "broker"
    load_or_make_ca(ca_dir)
    registry = make_registry()
    registry.save(tmp_path / "clients.toml")
    env = {
        **os.environ,
        "DRREADY_TOKEN_KEY": "k" * 48,
        "DRREADY_CLIENTS_FILE": str(tmp_path / "clients.toml"),
        "DRREADY_WEBHOOK_KEY": "w" * 48,
    }
    base = ["vtn", "serve", "--insecure-http", "--port", str(free_port())]
    key = ["--mqtt-ca-key", str(ca_dir / "ca-key.pem")]
    ca = ["--mqtt-ca", str(ca_dir / "ca.pem")]
    cases = [
        (["--mqtt-broker", "mqtts://127.0.0.1:1", *key], "--mqtt-ca: mqtt_ca_file"),
        (["--mqtt-broker", "mqtt://127.0.0.1:1", *ca, *key], "--mqtt-broker: mqtt_broker_url"),
    ]
    for options, named in cases:
        result = CliRunner().invoke(app, [*base, *options], env=env)
        assert result.exit_code == 2, result.output
        assert named in result.output, result.output
    os.chmod(ca_dir / "ca-key.pem", 0o640)
    readable = subprocess.run(
        [*CLI, *base, "--mqtt-broker", "mqtts://127.0.0.1:1", *ca, *key],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert readable.returncode == 2, readable.stderr
    assert "--mqtt-ca-key: ca_key_file" in readable.stderr and "0600" in readable.stderr
