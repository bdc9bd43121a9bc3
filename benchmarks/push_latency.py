"""Push latency benchmark (issue 16 items 1 and 5): from an event's creation at the VTN to its
receipt by each of 100 VENs — polling every 10 s, webhooks, MQTT — p50/p99, as a table.

What it measures: the BL creates ``--events`` DR events, each targeted at every VEN's unit
(``unit-<i>``), so every VEN receives every event with target hiding applied (its own target
only). The latency of one (event, VEN) pair is the wall-clock time at which that VEN has the
event (the poll's answer read, the webhook's POST received, the MQTT message delivered) minus
the event's ``createdDateTime`` as the VTN stamped it (UTC, whole milliseconds: the figures
are up to 1 ms high). All parties run on this machine, so one clock serves both ends.

* **poll**: each VEN reads ``GET /events?programID=…&targets=unit-<i>`` every
  ``--poll-interval`` seconds (10 s by default) from a random phase, its own HTTPS connection
  kept alive; events are created at random instants after one full interval.
* **webhook**: each VEN subscribes (``POST /subscriptions``, echo-verified by the VTN) with its
  own callback URL; the callbacks are paths of one HTTPS server in this process (uvicorn, in a
  thread). Notifications are HMAC-signed per VEN by the VTN; the receiver records them without
  checking (the check is the tests' business, and costs microseconds).
* **mqtt**: each VEN connects to the broker (mutual TLS) with the certificate ``GET
  /notifiers`` gives it (OpenADR 3.1 ``CERTIFICATE``) and subscribes to its own events topic
  (``GET /notifiers/mqtt/topics/vens/{venID}/events``); the broker's ACL lets it read nothing
  else.

Setup, in a temporary directory outside the repository (removed afterwards): a CA and server
certificate; a client registry of the BL and ``--vens`` VEN clients (one shared secret hash:
tokens are minted here with the VTN's signing key — the same signed JWTs the token endpoint
issues — so that 101 scrypt verifications do not dominate the start-up); ``drready vtn serve``
as a child process over HTTPS (``--workers``, SQLite, ``--allow-private-callbacks`` for the
loopback callbacks, ``--mqtt-broker mqtts://…`` with the broker CA's key); a Mosquitto broker of
its own on a free loopback port with the access control ``drready vtn mqtt-config`` writes.

Run: ``.venv/bin/python benchmarks/push_latency.py`` (≈ 1 min). ``--events 3`` is shorter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from drready.openadr.push import certificate_context
from drready.openadr.vtn.mqtt_access import write_broker_config
from drready.security.certs import write_bundle
from drready.security.tls import uvicorn_ssl_kwargs
from drready.security.tokens import ClientRecord, ClientRegistry, hash_secret

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def created_at(event: dict[str, Any]) -> float:
    """The VTN's creation stamp of an event [epoch s]."""
    return datetime.fromisoformat(event["createdDateTime"].replace("Z", "+00:00")).timestamp()


@dataclass
class Receipts:
    """First receipt time of each (event id, VEN index) [epoch s]."""

    at: dict[tuple[str, int], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def got(self, event_id: str, ven: int) -> None:
        now = time.time()
        with self.lock:
            self.at.setdefault((event_id, ven), now)

    def count(self) -> int:
        with self.lock:
            return len(self.at)

    def latencies_ms(self, events: dict[str, float]) -> np.ndarray:
        with self.lock:
            return np.array(
                [(t - events[e]) * 1000 for (e, _), t in self.at.items() if e in events]
            )


@dataclass
class Setup:
    base: str
    ca: str
    bl: dict[str, str]
    vens: list[dict[str, str]]  # Authorization headers
    ven_ids: list[str]
    program_id: str
    broker_port: int
    broker_dir: Path
    callback_port: int = 0


@contextlib.contextmanager
def child(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A child process writing into ``log``, stopped (SIGTERM, then SIGKILL) afterwards."""
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, text=True
        )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_port(port: int, proc: subprocess.Popen[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def create_events(setup: Setup, n: int, spacing_s: float, jitter: bool) -> dict[str, float]:
    """Create ``n`` events targeted at every VEN's unit; their creation stamps by id."""
    targets = [f"unit-{i}" for i in range(len(setup.vens))]
    out: dict[str, float] = {}
    with httpx.Client(verify=ssl.create_default_context(cafile=setup.ca)) as http:
        for k in range(n):
            time.sleep(spacing_s * (random.uniform(0.5, 1.5) if jitter else 1.0))
            body = {"programID": setup.program_id, "eventName": f"bench-{k}", "targets": targets}
            r = http.post(f"{setup.base}/events", headers=setup.bl, json=body)
            r.raise_for_status()
            event = r.json()
            out[event["id"]] = created_at(event)
    return out


def wait_all(receipts: Receipts, want: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while receipts.count() < want and time.monotonic() < deadline:
        time.sleep(0.05)


# ------------------------------------------------------------------ the three ways


def poll_phase(setup: Setup, n_events: int, interval_s: float) -> tuple[np.ndarray, int]:
    receipts = Receipts()
    stop = threading.Event()

    async def poller(i: int) -> None:
        ctx = ssl.create_default_context(cafile=setup.ca)
        params = {"programID": setup.program_id, "targets": f"unit-{i}"}
        async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
            await asyncio.sleep(random.uniform(0, interval_s))
            tick = time.monotonic()
            while not stop.is_set():
                r = await http.get(f"{setup.base}/events", headers=setup.vens[i], params=params)
                for event in r.json():
                    receipts.got(event["id"], i)
                tick += interval_s
                await asyncio.sleep(max(0.0, tick - time.monotonic()))

    async def run() -> None:
        tasks = [asyncio.create_task(poller(i)) for i in range(len(setup.vens))]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=asyncio.run, args=(run(),))
    thread.start()
    try:
        time.sleep(interval_s)  # every poller in its steady rhythm
        events = create_events(setup, n_events, interval_s / n_events, jitter=True)
        want = len(setup.vens) * n_events
        deadline = time.monotonic() + 2 * interval_s
        while time.monotonic() < deadline:
            with receipts.lock:
                if sum(1 for key in receipts.at if key[0] in events) >= want:
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
    lat = receipts.latencies_ms(events)
    return lat, len(setup.vens) * n_events


def webhook_phase(setup: Setup, n_events: int, certs: Any) -> tuple[np.ndarray, int]:
    receipts = Receipts()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = b""
        if scope["method"] == "GET":
            query = scope["query_string"].decode()
            answer = query.split("echo=", 1)[1].split("&")[0].encode() if "echo=" in query else b""
        else:
            ven = int(scope["path"].rsplit("-", 1)[1])
            receipts.got(json.loads(body)["object"]["id"], ven)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})

    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        interface="asgi3",
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=1,
        **uvicorn_ssl_kwargs(certs.server_cert, certs.server_key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    subscription_ids: list[tuple[int, str]] = []
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=setup.ca), timeout=30) as http:
            for i, headers in enumerate(setup.vens):
                body = {
                    "clientName": f"ven-{i}",
                    "objectOperations": [
                        {
                            "objects": ["EVENT"],
                            "operations": ["CREATE", "UPDATE"],
                            "callbackUrl": f"https://localhost:{port}/ven-{i}",
                            "bearerToken": f"token-{i}",
                        }
                    ],
                }
                r = http.post(f"{setup.base}/subscriptions", headers=headers, json=body)
                r.raise_for_status()
                subscription_ids.append((i, r.json()["id"]))
            events = create_events(setup, n_events, 1.0, jitter=False)
            wait_all(receipts, len(setup.vens) * n_events, timeout_s=30)
            for i, sid in subscription_ids:
                http.delete(f"{setup.base}/subscriptions/{sid}", headers=setup.vens[i])
    finally:
        server.should_exit = True
        thread.join(10)
    return receipts.latencies_ms(events), len(setup.vens) * n_events


def mqtt_phase(setup: Setup, n_events: int) -> tuple[np.ndarray, int]:
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion

    receipts = Receipts()
    clients = []
    subscribed = threading.Semaphore(0)
    with httpx.Client(verify=ssl.create_default_context(cafile=setup.ca), timeout=30) as http:
        topics = [
            http.get(
                f"{setup.base}/notifiers/mqtt/topics/vens/{vid}/events", headers=setup.vens[i]
            ).json()["topics"]["ALL"]
            for i, vid in enumerate(setup.ven_ids)
        ]
        auths = [
            http.get(f"{setup.base}/notifiers", headers=headers).json()["MQTT"]["authentication"]
            for headers in setup.vens
        ]
    for i, topic in enumerate(topics):
        client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"ven-{i}")
        pem = auths[i]
        client.tls_set_context(
            certificate_context(pem["caCert"], pem["clientCert"], pem["clientKey"])
        )

        def on_connect(c: Any, u: Any, f: Any, rc: Any, p: Any, topic: str = topic) -> None:
            c.subscribe(topic, qos=1)

        def on_subscribe(c: Any, u: Any, mid: Any, codes: Any, p: Any) -> None:
            subscribed.release()

        def on_message(c: Any, u: Any, msg: Any, i: int = i) -> None:
            receipts.got(json.loads(msg.payload)["object"]["id"], i)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect("127.0.0.1", setup.broker_port)
        client.loop_start()
        clients.append(client)
    try:
        for _ in clients:
            if not subscribed.acquire(timeout=20):
                raise RuntimeError("an MQTT client did not subscribe")
        events = create_events(setup, n_events, 1.0, jitter=False)
        wait_all(receipts, len(setup.vens) * n_events, timeout_s=30)
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
    return receipts.latencies_ms(events), len(setup.vens) * n_events


# ------------------------------------------------------------------ setup and table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vens", type=int, default=100)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not os.path.exists(MOSQUITTO):
        print(f"needs Mosquitto ({MOSQUITTO})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="drready-push-") as tmp_dir:
        tmp = Path(tmp_dir)
        certs = write_bundle(tmp / "certs")
        key = os.urandom(48).hex()
        shared_hash = hash_secret("benchmark-secret-0123456789")
        registry = ClientRegistry(signing_key=key)
        registry.add_client("bl", "benchmark-bl-secret-0123456789", role="bl")
        policy = registry.policy
        records = [
            ClientRecord(f"ven-{i}", shared_hash, "ven", policy.default_scopes["ven"])
            for i in range(args.vens)
        ]
        registry = ClientRegistry(
            [*registry.clients, *records], signing_key=key, algorithm=registry.algorithm
        )
        clients_file = tmp / "clients.json"
        clients_file.write_text(registry.dumps("json"))
        broker_port = free_port()
        broker = write_broker_config(tmp / "broker", registry.clients, port=broker_port)
        port = free_port()
        base = f"https://localhost:{port}"
        env = {
            **os.environ,
            "DRREADY_TOKEN_KEY": key,
            "DRREADY_CLIENTS_FILE": str(clients_file),
            "DRREADY_WEBHOOK_KEY": os.urandom(32).hex(),
        }
        command = [sys.executable, "-m", "drready.cli", "vtn", "serve", "--port", str(port)]
        command += ["--cert", str(certs.server_cert), "--key", str(certs.server_key)]
        command += ["--database", f"sqlite:///{tmp / 'vtn.db'}", "--base-url", base]
        command += ["--workers", str(args.workers), "--allow-private-callbacks"]
        command += ["--callback-ca", str(certs.ca_cert)]
        command += ["--mqtt-broker", f"mqtts://127.0.0.1:{broker_port}"]
        command += ["--mqtt-ca", str(broker.ca_cert), "--mqtt-ca-key", str(broker.ca_key)]
        with (
            child([MOSQUITTO, "-c", str(broker.conf)], tmp / "mosquitto.log") as mosquitto,
            child(command, tmp / "vtn.log", env) as vtn,
        ):
            wait_port(broker_port, mosquitto)
            wait_port(port, vtn)
            tokens = registry.token_service(base)

            def auth(client_id: str, role: str) -> dict[str, str]:
                token, _ = tokens.issue(client_id, policy.default_scopes[role], role=role)
                return {"Authorization": f"Bearer {token}"}

            bl = auth("bl", "bl")
            vens = [auth(f"ven-{i}", "ven") for i in range(args.vens)]
            ca = str(certs.ca_cert)
            with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=30) as http:
                for _ in range(100):
                    with contextlib.suppress(httpx.HTTPError):
                        if http.get(f"{base}/auth/server").status_code == 200:
                            break
                    time.sleep(0.1)
                program = http.post(f"{base}/programs", headers=bl, json={"programName": "b"})
                ven_ids = []
                for i in range(args.vens):
                    body = {
                        "objectType": "BL_VEN_REQUEST",
                        "clientID": f"ven-{i}",
                        "venName": f"ven-{i}",
                        "targets": [f"unit-{i}"],
                    }
                    ven_ids.append(http.post(f"{base}/vens", headers=bl, json=body).json()["id"])
            setup = Setup(
                base, ca, bl, vens, ven_ids, program.json()["id"], broker_port, tmp / "broker"
            )
            rows = [
                (
                    f"poll every {args.poll_interval:g} s",
                    *poll_phase(setup, args.events, args.poll_interval),
                ),
                ("webhook", *webhook_phase(setup, args.events, certs)),
                ("MQTT", *mqtt_phase(setup, args.events)),
            ]
    print(
        f"\nevent creation → receipt at {args.vens} VENs ({args.events} events each, "
        f"VTN --workers {args.workers}, {os.cpu_count()} cores)\n"
    )
    print(f"{'delivery':<18} {'received':>10} {'p50 [ms]':>10} {'p99 [ms]':>10} {'max [ms]':>10}")
    for name, lat, want in rows:
        if len(lat) == 0:
            print(f"{name:<18} {0:>5}/{want:<4} {'—':>10} {'—':>10} {'—':>10}")
            continue
        p50, p99 = np.percentile(lat, [50, 99])
        print(f"{name:<18} {len(lat):>5}/{want:<4} {p50:>10.1f} {p99:>10.1f} {lat.max():>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
