"""The MQTT notifier binding of the VTN: GET /notifiers, the topic endpoints (shapes, scopes,
privacy), publication with per-VEN target hiding, and a publish that never blocks (C1, S1).

Needs the development broker at 127.0.0.1:1883 (anonymous) for the publication tests; they
skip with a message when it is unreachable (CI has one and turns skips into failures).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from drready.openadr.models import ObjectType, Operation
from drready.openadr.spec import validate
from drready.openadr.vtn import VtnSettings, create_app
from drready.openadr.vtn.mqtt import CompositeNotifier, MqttNotifier, route
from tests.test_vtn_api import fetch_token, make_registry

BROKER = "mqtt://127.0.0.1:1883"

TOPIC_PATHS = (
    "/notifiers/mqtt/topics/programs",
    "/notifiers/mqtt/topics/programs/{programID}",
    "/notifiers/mqtt/topics/events",
    "/notifiers/mqtt/topics/programs/{programID}/events",
    "/notifiers/mqtt/topics/reports",
    "/notifiers/mqtt/topics/subscriptions",
    "/notifiers/mqtt/topics/vens",
    "/notifiers/mqtt/topics/vens/{venID}",
    "/notifiers/mqtt/topics/resources",
    "/notifiers/mqtt/topics/vens/{venID}/events",
    "/notifiers/mqtt/topics/vens/{venID}/programs",
    "/notifiers/mqtt/topics/vens/{venID}/resources",
)


def _broker_reachable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1.0):
            return None
    except OSError as err:
        return str(err)


@pytest.fixture(scope="module")
def broker() -> str:
    problem = _broker_reachable()
    if problem is not None:
        pytest.skip(f"MQTT broker at 127.0.0.1:1883 unreachable ({problem}): start mosquitto")
    return BROKER


class Subscriber:
    """A paho client collecting the JSON messages of some topics."""

    def __init__(self, *topics: str) -> None:
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        client = Client(callback_api_version=CallbackAPIVersion.VERSION2)

        def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
            c.subscribe([(t, 1) for t in topics])

        def on_subscribe(c: Any, u: Any, mid: Any, codes: Any, p: Any) -> None:
            self._subscribed.set()

        def on_message(c: Any, u: Any, msg: Any) -> None:
            with self._lock:
                self.messages.append((msg.topic, json.loads(msg.payload)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect("127.0.0.1", 1883)
        client.loop_start()
        assert self._subscribed.wait(5), "subscription not acknowledged"
        self.client = client

    def about(self, object_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(t, m) for t, m in self.messages if m["object"].get("id") == object_id]

    def wait_for(self, object_id: str, timeout_s: float = 5.0) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.about(object_id)
            if got:
                return got
            time.sleep(0.02)
        return []

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Recording:
    def __init__(self) -> None:
        self.seen: list[tuple[Operation, ObjectType, dict[str, Any]]] = []

    def publish(self, operation: Operation, object_type: ObjectType, obj: dict[str, Any]) -> None:
        self.seen.append((operation, object_type, obj))


@pytest.fixture
def mqtt_vtn(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Recording]]:
    registry = make_registry()
    settings = VtnSettings(
        database_url=f"sqlite:///{tmp_path / 'vtn.db'}",
        base_url="https://vtn.test",
        mqtt_broker_url=BROKER,
    )
    recording = Recording()
    app = create_app(
        settings, registry, registry.token_service("https://vtn.test"), notifier=recording
    )
    assert isinstance(app.state.notifier, CompositeNotifier)  # webhooks-like + MQTT
    with TestClient(app) as client:
        h = {
            w: {"Authorization": f"Bearer {fetch_token(client, w)}"}
            for w in ("bl", "ven-a", "ven-b")
        }
        yield client, h, recording


def _make_vens(client: TestClient, h: dict[str, dict[str, str]]) -> tuple[str, str]:
    ids = []
    for who, target in (("ven-a", "area-1"), ("ven-b", "area-2")):
        r = client.post(
            "/vens",
            headers=h["bl"],
            json={
                "objectType": "BL_VEN_REQUEST",
                "clientID": who,
                "venName": who,
                "targets": [target],
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids[0], ids[1]


# --- topic names (pure) ---------------------------------------------------------------------


def test_route_applies_per_ven_privacy_and_target_hiding():
    event = {"id": "e1", "programID": "p1", "objectType": "EVENT", "targets": ["t1", "t3"]}
    vens = [("va", "ca", frozenset({"t1"})), ("vb", "cb", frozenset({"t2"}))]
    out = dict(route(Operation.CREATE, ObjectType.EVENT, event, lambda: vens))
    assert set(out) == {
        "events/create",
        "programs/p1/events/create",
        "clients/ca/vens/va/events/create",
    }
    assert out["events/create"]["targets"] == ["t1", "t3"]
    assert out["clients/ca/vens/va/events/create"]["targets"] == ["t1"]
    untargeted = {"id": "p2", "objectType": "PROGRAM", "programName": "x"}
    topics = [t for t, _ in route(Operation.UPDATE, ObjectType.PROGRAM, untargeted, lambda: vens)]
    assert topics == [
        "programs/update",
        "programs/p2/update",
        "clients/ca/vens/va/programs/update",
        "clients/cb/vens/vb/programs/update",
    ]
    resource = {"id": "r1", "objectType": "RESOURCE", "venID": "va"}
    assert [t for t, _ in route(Operation.DELETE, ObjectType.RESOURCE, resource, lambda: vens)] == [
        "resources/delete",
        "clients/ca/vens/va/resources/delete",
    ]
    # an owner whose client id cannot be one topic level gets no per-VEN topic
    wild = [("vw", "bad/+#", frozenset({"t1"}))]
    assert [t for t, _ in route(Operation.CREATE, ObjectType.EVENT, event, lambda: wild)] == [
        "events/create",
        "programs/p1/events/create",
    ]
    assert route(Operation.READ, ObjectType.EVENT, event, lambda: vens) == []


# --- not offered ----------------------------------------------------------------------------


def test_without_broker_the_binding_is_not_offered(tmp_path):
    registry = make_registry()
    settings = VtnSettings(
        database_url=f"sqlite:///{tmp_path / 'vtn.db'}", base_url="https://vtn.test"
    )
    app = create_app(settings, registry, registry.token_service("https://vtn.test"))
    with TestClient(app) as client:
        h = {"Authorization": f"Bearer {fetch_token(client, 'bl')}"}
        assert client.get("/notifiers", headers=h).json() == {"WEBHOOK": True}
        r = client.get("/notifiers/mqtt/topics/programs", headers=h)
        assert r.status_code == 404 and "not offered" in r.json()["detail"]
        assert client.get("/notifiers/mqtt/topics/vens/abc/events", headers=h).status_code == 404
    with pytest.raises(ValueError, match="mqtt_broker_url"):
        create_app(
            settings,
            registry,
            registry.token_service("https://vtn.test"),
            mqtt_notifier=MqttNotifier(BROKER),
        )
    with pytest.raises(ValueError):
        VtnSettings(mqtt_broker_url="http://127.0.0.1:1883")


# --- the REST side --------------------------------------------------------------------------


def test_notifiers_and_topic_endpoints_answer_spec_shapes_with_scopes_and_privacy(mqtt_vtn):
    client, h, _ = mqtt_vtn
    body = client.get("/notifiers", headers=h["ven-a"]).json()
    validate("notifiersResponse", body)
    assert body == {
        "WEBHOOK": True,
        "MQTT": {
            "URIS": [BROKER],
            "serialization": "JSON",
            "authentication": {"method": "ANONYMOUS"},
        },
    }
    ven_a, ven_b = _make_vens(client, h)
    prog = client.post("/programs", headers=h["bl"], json={"programName": "p"}).json()["id"]

    expected = {
        "programs": "programs",
        f"programs/{prog}": f"programs/{prog}",
        "events": "events",
        f"programs/{prog}/events": f"programs/{prog}/events",
        "reports": "reports",
        "subscriptions": "subscriptions",
        "vens": "vens",
        f"vens/{ven_a}": f"clients/ven-a/vens/{ven_a}",
        "resources": "resources",
        f"vens/{ven_a}/events": f"clients/ven-a/vens/{ven_a}/events",
        f"vens/{ven_a}/programs": f"clients/ven-a/vens/{ven_a}/programs",
        f"vens/{ven_a}/resources": f"clients/ven-a/vens/{ven_a}/resources",
    }
    for path, prefix in expected.items():
        r = client.get(f"/notifiers/mqtt/topics/{path}", headers=h["bl"])
        assert r.status_code == 200, (path, r.text)
        got = r.json()
        validate("notifierTopicsResponse", got)
        want = {"UPDATE": f"{prefix}/update", "DELETE": f"{prefix}/delete", "ALL": f"{prefix}/+"}
        if path not in (f"programs/{prog}", f"vens/{ven_a}"):
            want["CREATE"] = f"{prefix}/create"  # none for one existing object
        assert got == {"topics": want}, path
    # the spec's example, verbatim
    assert client.get("/notifiers/mqtt/topics/programs", headers=h["bl"]).json() == {
        "topics": {
            "ALL": "programs/+",
            "CREATE": "programs/create",
            "DELETE": "programs/delete",
            "UPDATE": "programs/update",
        }
    }

    # scopes: the general topics are BL's (read_bl / read_all)
    for path in ("events", "reports", "subscriptions", "vens", "resources", "programs"):
        r = client.get(f"/notifiers/mqtt/topics/{path}", headers=h["ven-a"])
        assert r.status_code == 403, path
        validate("problem", r.json())
    assert client.get("/notifiers/mqtt/topics/events").status_code == 401
    # privacy: a VEN gets its own ven's topics, 404 for another's (as GET /vens/{venID})
    for suffix in ("", "/events", "/programs", "/resources"):
        own = client.get(f"/notifiers/mqtt/topics/vens/{ven_a}{suffix}", headers=h["ven-a"])
        assert own.status_code == 200, own.text
        other = client.get(f"/notifiers/mqtt/topics/vens/{ven_b}{suffix}", headers=h["ven-a"])
        assert other.status_code == 404, suffix
        validate("problem", other.json())
    assert client.get("/notifiers/mqtt/topics/vens/nope/events", headers=h["bl"]).status_code == 404
    assert client.get("/notifiers/mqtt/topics/programs/nope", headers=h["bl"]).status_code == 404
    assert client.get("/notifiers/mqtt/topics/vens/b%2Fad", headers=h["bl"]).status_code in (
        400,
        404,
        422,
    )

    doc = client.get("/openapi.json").json()
    for path in TOPIC_PATHS:
        op = doc["paths"][path]["get"]
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == {n for n in ("programID", "venID") if "{" + n + "}" in path}, path


# --- publication ----------------------------------------------------------------------------


def test_targeted_event_reaches_only_the_granted_ven_with_target_hiding(broker, mqtt_vtn):
    client, h, recording = mqtt_vtn
    ven_a, ven_b = _make_vens(client, h)
    topics = {
        w: client.get(f"/notifiers/mqtt/topics/vens/{v}/events", headers=h[w]).json()["topics"]
        for w, v in (("ven-a", ven_a), ("ven-b", ven_b))
    }
    general = client.get("/notifiers/mqtt/topics/events", headers=h["bl"]).json()["topics"]
    sub_a = Subscriber(topics["ven-a"]["ALL"])
    sub_b = Subscriber(topics["ven-b"]["ALL"])
    sub_bl = Subscriber(general["ALL"])
    try:
        prog = client.post("/programs", headers=h["bl"], json={"programName": "p"}).json()["id"]
        r = client.post(
            "/events",
            headers=h["bl"],
            json={"programID": prog, "targets": ["area-1", "area-9"], "intervals": []},
        )
        assert r.status_code == 201, r.text
        event = r.json()

        got_a = sub_a.wait_for(event["id"])
        assert [t for t, _ in got_a] == [topics["ven-a"]["CREATE"]]
        note = got_a[0][1]
        validate("notification", note)
        assert note["operation"] == "CREATE" and note["objectType"] == "EVENT"
        assert note["object"]["targets"] == ["area-1"]  # target hiding
        assert note["targets"] == ["area-1"]

        got_bl = sub_bl.wait_for(event["id"])
        assert [t for t, _ in got_bl] == [general["CREATE"]]
        assert got_bl[0][1]["object"]["targets"] == ["area-1", "area-9"]
        assert got_bl[0][1]["object"] == event

        # an update reaches A on the update topic; B, never granted, heard nothing at all
        r = client.put(
            f"/events/{event['id']}",
            headers=h["bl"],
            json={**event, "eventName": "renamed"},
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 5
        while len(sub_a.about(event["id"])) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [t for t, _ in sub_a.about(event["id"])][1] == topics["ven-a"]["UPDATE"]
        time.sleep(0.3)
        assert sub_b.about(event["id"]) == []
        assert sub_b.messages == []
        # the other notifier of the composite saw the same changes
        assert (Operation.CREATE, ObjectType.EVENT) in {(o, k) for o, k, _ in recording.seen}
    finally:
        for s in (sub_a, sub_b, sub_bl):
            s.close()


def test_publish_never_blocks_even_without_a_broker():
    # a closed port (refused) and a black-holed address (connect would hang)
    for url in ("mqtt://127.0.0.1:9", "mqtt://192.0.2.1:1883"):
        notifier = MqttNotifier(url)
        obj = {"id": "x", "objectType": "PROGRAM", "programName": "p"}
        start = time.perf_counter()
        for _ in range(200):
            notifier.publish(Operation.CREATE, ObjectType.PROGRAM, dict(obj))
        elapsed = time.perf_counter() - start
        assert elapsed < 0.25, f"{url}: 200 publishes took {elapsed:.3f} s"
        assert notifier.stats.queued == 200
        assert not notifier.connected.is_set()
        notifier.close(timeout_s=1.0)
    full = MqttNotifier("mqtt://127.0.0.1:9", max_queue=1)
    full._ensure_worker = lambda: None  # type: ignore[method-assign]  # nothing drains it
    for _ in range(3):
        full.publish(Operation.CREATE, ObjectType.PROGRAM, {"id": "y"})
    assert (full.stats.queued, full.stats.dropped) == (1, 2)


def test_composite_isolates_a_failing_notifier():
    class Boom:
        def publish(self, *args: Any) -> None:
            raise RuntimeError("boom")

    rec = Recording()
    composite = CompositeNotifier([Boom(), rec])
    obj = {"id": "z", "targets": ["a"]}
    composite.publish(Operation.DELETE, ObjectType.EVENT, obj)
    assert rec.seen == [(Operation.DELETE, ObjectType.EVENT, obj)]
