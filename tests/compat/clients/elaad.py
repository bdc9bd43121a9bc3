"""Compatibility row runner for ElaadNL ``openadr3-client`` (OpenADR 3.1) with its GAC 2.2
compliance plugin registered: every object the client builds or reads back is validated against
GAC 2.2 as well, so the VTN must round-trip GAC programs, events and VENs intact. Run by
``tests/compat/harness.py`` in the client's virtual environment; prints one JSON line of cells.
Not imported by drready."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _rows import (
    NOTIFY_TIMEOUT_S,
    EchoReceiver,
    Matrix,
    Outcome,
    fail,
    load_config,
    notification_names,
)
from openadr3_client.plugin import ValidatorPluginRegistry
from openadr3_client_gac_compliance.gac22.plugin import Gac22ValidatorPlugin

ValidatorPluginRegistry.register_plugin(Gac22ValidatorPlugin().setup())

from openadr3_client.bl.http_factory import BusinessLogicHttpClientFactory  # noqa: E402
from openadr3_client.oadr310._vtn.interfaces.filters import TargetFilter  # noqa: E402
from openadr3_client.oadr310.models.event.event import NewEvent  # noqa: E402
from openadr3_client.oadr310.models.program.program import NewProgram  # noqa: E402
from openadr3_client.oadr310.models.report.report import NewReport  # noqa: E402
from openadr3_client.oadr310.models.resource.resource import NewResourceVenRequest  # noqa: E402
from openadr3_client.oadr310.models.subscriptions.subscription import (  # noqa: E402
    NewSubscription,
)
from openadr3_client.oadr310.models.ven.ven import NewVenVenRequest  # noqa: E402
from openadr3_client.ven.http_factory import VirtualEndNodeHttpClientFactory  # noqa: E402
from openadr3_client.version import OADRVersion  # noqa: E402

config = load_config()
m = Matrix()
state: dict[str, Any] = {}


def describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        req = response.request
        print(
            f"{req.method} {req.path_url}: {response.status_code} {response.text}", file=sys.stderr
        )
        return f"HTTP {response.status_code} on {req.method} {urlsplit(req.url).path}"
    return type(exc).__name__


def ean13(body: str) -> str:
    """``body`` (12 digits) with its EAN check digit (GAC: a VEN name is an EAN13)."""
    digits = [int(d) for d in body]
    weighted = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return body + str((10 - weighted % 10) % 10)


def gac_event(program_id: str, name: str, targets: list[str]) -> NewEvent:
    return NewEvent.model_validate(
        {
            "programID": program_id,
            "eventName": name,
            "targets": targets,
            "payloadDescriptors": [
                {
                    "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                    "payloadType": "IMPORT_CAPACITY_LIMIT",
                    "units": "KW",
                }
            ],
            "intervalPeriod": {"start": config["start"], "duration": "PT1H"},
            "intervals": [
                {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [11.0]}]}
            ],
        }
    )


def token() -> None:
    ca = Path(config["ca"])
    common = {"vtn_base_url": config["vtn"], "token_url": None, "verify_vtn_tls_certificate": ca}
    state["bl"] = BusinessLogicHttpClientFactory.create_http_bl_client(
        client_id=config["bl_id"],
        client_secret=config["bl_secret"],
        version=OADRVersion.OADR_310,
        **common,
    )
    state["ven"] = VirtualEndNodeHttpClientFactory.create_http_ven_client(
        client_id=config["ven_id"],
        client_secret=config["ven_secret"],
        version=OADRVersion.OADR_310,
        **common,
    )
    # the clients fetch their tokens lazily: one read each, of the one ven object granted to
    # this VEN (GAC-valid; other clients' objects need not be)
    for client in (state["ven"], state["bl"]):
        client.vens.get_vens(ven_name=config["granted_ven_name"], target=None, pagination=None)


m.run("token", token, describe)
if m.rows["token"][0] != "PASS":
    m.emit()
    raise SystemExit(0)
bl = state["bl"]
ven = state["ven"]


def program_read() -> None:
    """A GAC program created by the client's BL, read back by its VEN (GAC-validated)."""
    program = bl.programs.create_program(
        new_program=NewProgram.model_validate(
            {
                "programName": f"gac-{uuid.uuid4().hex[:8]}",
                "attributes": [
                    {"type": "RETAILER_NAME", "values": ["drready"]},
                    {"type": "PROGRAM_TYPE", "values": ["DSO_CPO_INTERFACE-2.2.0"]},
                    {"type": "BINDING_EVENTS", "values": [True]},
                ],
            }
        )
    )
    state["program"] = program
    if ven.programs.get_program_by_id(program_id=program.id).id != program.id:
        raise fail("program not read back")


def event_read() -> None:
    program = state["program"]
    event = bl.events.create_event(new_event=gac_event(program.id, "gac-all", [config["target"]]))
    state["event"] = event
    seen = ven.events.get_events(target=None, pagination=None, program_id=program.id)
    if event.id in [e.id for e in seen]:
        raise fail("a targeted event is listed without its targets")
    if ven.events.get_event_by_id(event_id=event.id).id != event.id:
        raise fail("targeted event not read by id")


def ven_create() -> None:
    own = ven.vens.create_ven(
        new_ven=NewVenVenRequest.model_validate({"venName": ean13("871234567890")})
    )
    state["ven_id"] = own.id


def resource_create() -> None:
    if "ven_id" not in state:
        raise fail("needs the VEN row")
    resource = ven.resources.create_resource(
        new_resource=NewResourceVenRequest.model_validate(
            {"resourceName": f"{config['ven_id']}-heater", "venID": state["ven_id"]}
        )
    )
    if ven.resources.get_resource_by_id(resource_id=resource.id).id != resource.id:
        raise fail("resource not read back")


def events_targets() -> None:
    if "event" not in state:
        raise fail("needs the event row")
    seen = ven.events.get_events(
        target=TargetFilter(targets=[config["target"]]),
        pagination=None,
        program_id=state["program"].id,
    )
    if state["event"].id not in [e.id for e in seen]:
        raise fail("targeted event not listed with its targets")
    if list(seen[0].targets or ()) != [config["target"]]:
        raise fail("targets not as granted")


def report_create() -> None:
    if "event" not in state:
        raise fail("needs the event row")
    report = ven.reports.create_report(
        new_report=NewReport.model_validate(
            {
                "eventID": state["event"].id,
                "clientName": f"{config['ven_id']}-gw",
                "resources": [
                    {
                        "resourceName": f"{config['ven_id']}-heater",
                        "intervalPeriod": {"start": config["start"], "duration": "PT1H"},
                        "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [0.8]}]}],
                    }
                ],
            }
        )
    )
    if bl.reports.get_report_by_id(report_id=report.id).id != report.id:
        raise fail("BL cannot read the report")


receiver = EchoReceiver(config)


def subscription_create() -> None:
    try:
        _subscription_create()
    except Outcome:
        raise
    except Exception as exc:
        from openadr3_client.oadr310.models.subscriptions.subscription import Operation

        names = "/".join(op.value for op in Operation)
        if "CREATE" in names:
            raise
        raise Outcome(
            "3.0",
            f"its 3.1 subscription model has 3.0's operations {names} (3.1: CREATE/READ/"
            f"UPDATE/DELETE); the VTN refuses POST: {describe(exc)}",
        ) from exc


def _subscription_create() -> None:
    if "program" not in state:
        raise fail("needs the program row")
    from openadr3_client.oadr310.models.subscriptions.subscription import Operation

    names = [op.value for op in Operation]
    operation = "CREATE" if "CREATE" in names else "POST"
    sub = ven.subscriptions.create_subscription(
        new_subscription=NewSubscription.model_validate(
            {
                "clientName": f"{config['ven_id']}-gw",
                "programID": state["program"].id,
                "objectOperations": [
                    {
                        "objects": ["EVENT"],
                        "operations": [operation],
                        "callbackUrl": receiver.url,
                        "bearerToken": None,
                    }
                ],
            }
        )
    )
    state["subscription"] = sub
    if ven.subscriptions.get_subscription_by_id(subscription_id=sub.id).id != sub.id:
        raise fail("subscription not read back")


def webhook_delivery() -> None:
    """The client has no receiver of its own: its subscription (row before) to an HTTPS echo
    receiver, then a GAC event created by its BL."""
    if "subscription" not in state:
        status, note = m.rows["subscription_create"]
        raise Outcome(status, note if status == "3.0" else "needs the subscription row")
    name = f"gac-webhook-{uuid.uuid4().hex[:6]}"
    bl.events.create_event(new_event=gac_event(state["program"].id, name, [config["target"]]))
    if not receiver.wait_for(lambda p: notification_names(p) == name, NOTIFY_TIMEOUT_S):
        raise fail(f"no notification within {NOTIFY_TIMEOUT_S:.0f} s")


def mqtt() -> None:
    from openadr3_client.oadr310._vtn.mqtt.client import MQTTClient

    if "ven_id" not in state or "program" not in state:
        raise fail("needs the VEN and program rows")
    notifiers = ven.notifiers.get_notifiers()
    # the ven object the BL granted the target to (the event is targeted)
    topics = ven.notifiers.get_event_topics_for_ven(ven_id=config["granted_ven_id"]).topics
    broker = urlsplit(str(notifiers.mqtt.uris[0]))
    got: list[bytes] = []
    subscribed = threading.Event()
    client = MQTTClient(notifiers.mqtt)
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_connect = lambda c, *_a: c.subscribe(topics.create, qos=1)
    client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    client.loop_start()
    try:
        if not subscribed.wait(5):
            raise fail("no SUBACK from the broker")
        name = f"gac-mqtt-{uuid.uuid4().hex[:6]}"
        bl.events.create_event(new_event=gac_event(state["program"].id, name, [config["target"]]))
        deadline = time.monotonic() + NOTIFY_TIMEOUT_S
        while time.monotonic() < deadline:
            if any(name.encode() in payload for payload in got):
                return
            time.sleep(0.1)
        raise fail(f"no message within {NOTIFY_TIMEOUT_S:.0f} s")
    finally:
        client.loop_stop()
        client.disconnect()


def _connack(client: Any, topic: str) -> tuple[str, list[bytes]]:
    """Connect ``client`` (a paho client), subscribe ``topic``: (``"ok"`` or the refusal, the
    messages list that fills while the loop runs)."""
    got: list[bytes] = []
    result: dict[str, str] = {}
    ready = threading.Event()

    def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        if reason.is_failure:
            result["connack"] = str(reason)
            ready.set()
        else:
            c.subscribe(topic, qos=1)

    def on_subscribe(*_a: Any) -> None:
        result["connack"] = "ok"
        ready.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    return_value = ("no CONNACK", got)
    try:
        client.connect(state["broker"].hostname or "127.0.0.1", state["broker"].port or 1883)
    except OSError as exc:
        return f"connect: {type(exc).__name__}", got
    client.loop_start()
    if ready.wait(5):
        return_value = (result["connack"], got)
    return return_value


def _delivered(client: Any, topic: str) -> str:
    """Connect ``client``, subscribe ``topic``, have the BL create an event for the client's
    target: ``"delivered"``, or what went wrong."""
    connack, got = _connack(client, topic)
    try:
        if connack != "ok":
            return connack
        name = f"gac-mqtt-acl-{uuid.uuid4().hex[:6]}"
        bl.events.create_event(new_event=gac_event(state["program"].id, name, [config["target"]]))
        deadline = time.monotonic() + NOTIFY_TIMEOUT_S
        while time.monotonic() < deadline:
            if any(name.encode() in payload for payload in got):
                return "delivered"
            time.sleep(0.1)
        return f"connected, no message within {NOTIFY_TIMEOUT_S:.0f} s"
    finally:
        client.loop_stop()
        client.disconnect()


def ven_get(path: str) -> Any:
    """As this VEN (a token of its own, outside the client): GET ``path``, decoded JSON."""
    import ssl
    import urllib.parse
    import urllib.request

    ctx = ssl.create_default_context(cafile=config["ca"])
    form = {"grant_type": "client_credentials", "client_id": config["ven_id"]}
    data = urllib.parse.urlencode({**form, "client_secret": config["ven_secret"]}).encode()
    with urllib.request.urlopen(config["vtn"] + "/auth/token", data=data, context=ctx) as res:
        token = json.loads(res.read())["access_token"]
    req = urllib.request.Request(config["vtn"] + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as res:
        return json.loads(res.read())


def mqtt_acl() -> None:
    """The binding /notifiers gives (CERTIFICATE: the CA, the client's certificate and key as
    PEM strings), applied by the client's own MQTTClient; where its model loses it, the
    client's own certificate model built from the wire strings, then from files."""
    from openadr3_client.oadr310._vtn.mqtt.client import MQTTClient
    from openadr3_client.oadr310.models.notifiers.mqtt.mqtt import (
        MqttNotifierAuthenticationCertificate,
    )

    notifiers = ven.notifiers.get_notifiers()
    auth = notifiers.mqtt.authentication
    state["broker"] = urlsplit(str(notifiers.mqtt.uris[0]))
    topics = ven.notifiers.get_event_topics_for_ven(ven_id=config["granted_ven_id"]).topics

    def attempt(binding: Any) -> str:
        try:
            return _delivered(MQTTClient(binding), topics.create)
        except Exception as exc:  # the client's constructor (paho's tls_set)
            return f"{type(exc).__name__}: {str(exc)[:60]}"

    as_parsed = attempt(notifiers.mqtt)
    if as_parsed == "delivered":
        return
    wire = ven_get("/notifiers")["MQTT"]["authentication"]
    pem = {"ca_cert": wire["caCert"], "client_cert": wire["clientCert"]}
    pem["client_key"] = wire["clientKey"]
    by_hand = MqttNotifierAuthenticationCertificate(**pem)
    as_strings = attempt(notifiers.mqtt.model_copy(update={"authentication": by_hand}))
    if as_strings.startswith(("OSError", "FileNotFoundError")):
        # paho opens the PEM text as a path: ENAMETOOLONG or ENOENT, by where the random
        # base64 happens to hold a "/" — one outcome, spelt one way, so the table stays put
        as_strings = "OSError: the PEM text is not a file name"
    work = Path(config["work_dir"])
    paths = {}
    for field, text in pem.items():
        path = work / f"mqtt-{field}.pem"
        path.touch(mode=0o600)
        path.write_text(text)
        paths[field] = str(path)
    as_files = MqttNotifierAuthenticationCertificate(**paths)
    files = attempt(notifiers.mqtt.model_copy(update={"authentication": as_files}))
    raise fail(
        f"/notifiers gives {wire['method']} (caCert, clientCert, clientKey as PEM strings); the "
        f"client's model keeps {type(auth).__name__} (no fields), so its MQTTClient connects "
        f"without a certificate: {as_parsed}. Its MqttNotifierAuthenticationCertificate built "
        f"from the same strings: paho's tls_set takes file names, {as_strings}; the strings "
        f"written to files, their paths in the model: {files}"
    )


if "mqtt_acl" in config["rows"]:
    for key, fn in (("program_read", program_read), ("mqtt_acl", mqtt_acl)):
        m.run(key, fn, describe)
    m.emit()
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
receiver.close()
