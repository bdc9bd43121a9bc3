"""Compatibility row runner for ``python-oa3-client`` (grid-coordination; OpenADR 3.1, on the
``openadr3`` package): its ``VenClient``/``BlClient``, its own ``WebhookChannel`` and
``MqttChannel``. Run by ``tests/compat/harness.py`` in the client's virtual environment with a
config file; prints one JSON line of cells. Not imported by drready."""

from __future__ import annotations

import sys
from typing import Any

import httpx
from _rows import (
    NOTIFY_TIMEOUT_S,
    EchoReceiver,
    Matrix,
    Outcome,
    fail,
    load_config,
    notification_names,
)

config = load_config()
m = Matrix()


def describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        req = exc.request
        return f"HTTP {exc.response.status_code} on {req.method} {req.url.path}"
    return type(exc).__name__


def created(resp: httpx.Response, what: str) -> dict[str, Any]:
    if resp.status_code != 201:
        print(f"POST {what}: {resp.status_code} {resp.text}", file=sys.stderr)
        raise fail(f"HTTP {resp.status_code} on POST {what}")
    body: dict[str, Any] = resp.json()
    return body


from openadr3_client import BlClient, VenClient  # noqa: E402

ven = VenClient(url=config["vtn"], client_id=config["ven_id"], client_secret=config["ven_secret"])
bl = BlClient(url=config["vtn"], client_id=config["bl_id"], client_secret=config["bl_secret"])


def token() -> None:
    ven.start()
    bl.start()


m.run("token", token, describe)
if m.rows["token"][0] != "PASS":
    m.emit()  # the harness marks the other rows FAIL
    raise SystemExit(0)


def program_read() -> None:
    program = ven.program(config["program_id"])
    by_name = ven.find_program_by_name(config["program_name"])
    if program.id != config["program_id"] or by_name is None or by_name.id != program.id:
        raise fail("program not found by id or name")


def event_read() -> None:
    ids = [e.id for e in ven.poll_events(program_name=config["program_name"])]
    if config["event_id"] not in ids:
        raise fail("the program's event is not listed")
    if config["targeted_event_id"] in ids:
        raise fail("a targeted event is listed without its targets")


def ven_create() -> str:
    ven.register(f"{config['ven_id']}-own")
    if not ven.ven_id:
        raise fail("no ven id")
    return ven.ven_id


def resource_create() -> None:
    if not ven.ven_id:
        raise Outcome("FAIL", "needs the VEN row")
    body = {
        "objectType": "VEN_RESOURCE_REQUEST",
        "resourceName": f"{config['ven_id']}-heater",
        "venID": ven.ven_id,
    }
    resource = created(ven.create_resource(body), "/resources")
    if ven.resource(resource["id"]).resource_name != body["resourceName"]:
        raise fail("resource not read back")


def events_targets() -> None:
    ids = [e.id for e in ven.events(programID=config["program_id"], targets=[config["target"]])]
    if config["targeted_event_id"] not in ids:
        raise fail("targeted event not listed with its targets")
    if ven.event(config["targeted_event_id"]).id != config["targeted_event_id"]:
        raise fail("targeted event not read by id")


def report_create() -> None:
    body = {
        "eventID": config["event_id"],
        "clientName": f"{config['ven_id']}-gw",
        "resources": [
            {
                "resourceName": f"{config['ven_id']}-heater",
                "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [0.8]}]}],
            }
        ],
    }
    report = created(ven.create_report(body), "/reports")
    if bl.report(report["id"]).id != report["id"]:
        raise fail("BL cannot read the report")


receiver = EchoReceiver(config)


def subscription_create() -> None:
    body = {
        "clientName": f"{config['ven_id']}-gw",
        "programID": config["program_id"],
        "objectOperations": [
            {"objects": ["EVENT"], "operations": ["CREATE"], "callbackUrl": receiver.url}
        ],
    }
    sub = created(ven.create_subscription(body), "/subscriptions")
    if ven.subscription(sub["id"]).id != sub["id"]:
        raise fail("subscription not read back")


def webhook_delivery() -> None:
    """The client's own receiver (``add_webhook``, subscribed with ``ven.subscribe``), and the
    subscription of the row before (made with the client to an HTTPS echo receiver)."""
    channel = ven.add_webhook(host="127.0.0.1", port=0, callback_host="127.0.0.1")
    channel.start()
    ven.subscribe(
        program_names=[config["program_name"]],
        objects=["EVENT"],
        operations=["CREATE"],
        channel=channel,
    )
    own_accepted = any(
        op.callback_url == channel.callback_url
        for sub in ven.subscriptions()
        for op in sub.object_operations
    )
    name = f"compat-webhook-{config['ven_id']}"
    bl.create_event(
        {
            "programID": config["program_id"],
            "eventName": name,
            "intervalPeriod": {"start": config["start"], "duration": "PT1H"},
            "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
        }
    ).raise_for_status()
    delivered = receiver.wait_for(lambda p: notification_names(p) == name, NOTIFY_TIMEOUT_S)
    if own_accepted:
        msgs = channel.await_messages(1, timeout=NOTIFY_TIMEOUT_S)
        if delivered and any(name in msg.raw_payload.decode() for msg in msgs):
            return
        raise fail(f"no notification within {NOTIFY_TIMEOUT_S:.0f} s")
    why = []
    if channel.callback_url.startswith("http://"):
        why.append("serves http://")
    if httpx.get(channel.callback_url, params={"echo": "probe"}).text != "probe":
        why.append("answers the echo GET without the challenge")
    raise fail(
        f"the VTN refuses the client's WebhookChannel: it {' and '.join(why) or 'is refused'} "
        "(Definition.md: https and the echo are MUSTs); through the client's subscription API "
        + ("an HTTPS echo receiver got the event" if delivered else "no delivery either")
    )


def connected(channel: Any, timeout_s: float) -> bool:
    """Whether the channel's MQTT link is up within ``timeout_s`` (its ebus client's state)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if channel._conn._client.is_connected():
            return True
        time.sleep(0.05)
    return False


def events_arrive(channel: Any, tag: str) -> bool:
    """Create events until one reaches ``channel`` (two tries, half the timeout each: a
    subscription the broker has not yet taken on loses the first)."""
    import time

    names: list[str] = []
    for attempt in (1, 2):
        names.append(f"{tag}-{attempt}")
        bl.create_event(
            {
                "programID": config["program_id"],
                "eventName": names[-1],
                "intervalPeriod": {"start": config["start"], "duration": "PT1H"},
                "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
            }
        ).raise_for_status()
        deadline = time.monotonic() + NOTIFY_TIMEOUT_S / 2
        while time.monotonic() < deadline:
            payloads = [msg.raw_payload.decode() for msg in channel.messages]
            if any(name in p for name in names for p in payloads):
                return True
            time.sleep(0.1)
    return False


def mqtt() -> None:
    if not ven.vtn_supports_mqtt():
        raise Outcome("pending", "the VTN offers no MQTT binding")
    uris = ven.get_mqtt_broker_uris()
    channel = ven.add_mqtt(uris[0])
    channel.start()
    if not connected(channel, 5.0):
        raise fail("no MQTT link after 5 s")
    topics = ven.subscribe(
        program_names=[config["program_name"]],
        objects=["EVENT"],
        operations=["CREATE"],
        channel=channel,
    )
    note = ""
    if not topics:  # openadr3.yaml: a program's event topics need read_all (a BL scope)
        status = ven.get_mqtt_topics_program_events(config["program_id"]).status_code
        topics = [t for t in ven.get_mqtt_topics_ven_events().json()["topics"].values()]
        channel.subscribe_topics(topics)
        note = (
            f"subscribe() finds no topics: the program's event topics answer {status} to a "
            "VEN (openadr3.yaml: read_all, a BL scope); subscribed through the client's VEN "
            "topics (/notifiers/mqtt/topics/vens/{venID}/events)"
        )
    if events_arrive(channel, f"compat-mqtt-{config['ven_id']}"):
        if note:
            raise Outcome("PASS", note)
        return
    raise fail(f"no message within {NOTIFY_TIMEOUT_S:.0f} s")


def mqtt_acl() -> None:
    """The broker /notifiers gives, through the client's MqttChannel."""
    import inspect

    from openadr3_client.mqtt import MQTTConnection

    wire = (ven.discover_notifiers() or {}).get("MQTT", {}).get("authentication") or {}
    method = wire.get("method")
    channel = ven.add_mqtt(ven.get_mqtt_broker_uris()[0])
    channel.start()
    params = sorted(set(inspect.signature(MQTTConnection.__init__).parameters) - {"self"})
    if not connected(channel, 3.0):
        raise fail(
            f"/notifiers gives {method} (the CA, a client certificate and key); the client's "
            f"MqttChannel takes {', '.join(params)}: no certificate, so the broker (mutual TLS) "
            "does not let it in (no link after 3 s)"
        )
    channel.subscribe_topics(list(ven.get_mqtt_topics_ven_events().json()["topics"].values()))
    if events_arrive(channel, f"compat-mqtt-acl-{config['ven_id']}"):
        return
    raise fail(
        f"/notifiers gives {method}; connected, but no message within {NOTIFY_TIMEOUT_S:.0f} s"
    )


if "mqtt_acl" in config["rows"]:
    for key, fn in (("ven_create", ven_create), ("mqtt_acl", mqtt_acl)):
        m.run(key, fn, describe)
    m.emit()
    ven.stop()
    bl.stop()
    raise SystemExit(0)

for key, fn in (
    ("program_read", program_read),
    ("event_read", event_read),
    ("ven_create", ven_create),
    ("resource_create", resource_create),
    ("events_targets", events_targets),
    ("report_create", report_create),
    ("subscription_create", subscription_create),
    ("webhook_delivery", webhook_delivery),
    ("mqtt", mqtt),
):
    m.run(key, fn, describe)
m.emit()
ven.stop()
bl.stop()
receiver.close()
