"""Compatibility row runner for ``oadr30-ven-ud`` (Universal Devices' OpenADR 3.0 VEN): its
``VTNOps``. Its calls return ``None``/``False`` on any error, so the runner records every HTTP
answer it receives (a wrapper around the ``requests`` functions it calls) to say what the VTN
answered. It has no target filters, subscriptions or MQTT: those cells are ``n/a``. Run by
``tests/compat/harness.py`` in the client's virtual environment; prints one JSON line of cells.
Not imported by drready."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

import oadr30.vtn as vtn_module
import requests
from _rows import Matrix, Outcome, fail, load_config
from oadr30.ven import VEN
from oadr30.vtn import VTNOps

config = load_config()
m = Matrix()
if config["rows"] == ["mqtt_acl"]:
    m.set("mqtt_acl", "n/a", "no MQTT")
    m.emit()
    raise SystemExit(0)
answers: list[tuple[str, str, int, str]] = []


def recording(method: str) -> Any:
    real = getattr(requests, method)

    def call(url: str, *args: Any, **kwargs: Any) -> Any:
        res = real(url, *args, **kwargs)
        answers.append((method.upper(), urllib.parse.urlsplit(url).path, res.status_code, res.text))
        return res

    return call


for name in ("get", "post", "put", "delete"):
    setattr(vtn_module.requests, name, recording(name))


def last(method: str, path: str) -> tuple[int, str]:
    for meth, p, status, text in reversed(answers):
        if meth == method and p == path:
            return status, text
    raise fail(f"the client sent no {method} {path}")


def detail(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text[:120]
    return str(body.get("detail") or body.get("error_description") or body.get("error") or body)


def describe(exc: BaseException) -> str:
    return type(exc).__name__


ops = VTNOps(config["vtn"], config["ven_id"], config["ven_secret"])


def token() -> None:
    """The client's own token request (it asks scope read_all, BL's scope in 3.1): RFC 6749
    §3.3 lets the VTN grant the VEN's own scopes instead, saying so in ``scope``."""
    if not ops.__refresh_token__():
        status, text = last("POST", "/auth/token")
        raise fail(f"HTTP {status} on POST /auth/token: {detail(text)}")
    granted = str((ops.token or {}).get("scope", ""))
    if "read_all" in granted.split():
        raise fail(f"a VEN token granted read_all: {granted}")


m.run("token", token, describe)
if ops.token is None:
    m.emit()
    raise SystemExit(0)


def program_read() -> None:
    program = ops.get_program(config["program_id"])
    if not program or program.get("id") != config["program_id"]:
        status, text = last("GET", f"/programs/{config['program_id']}")
        raise fail(f"HTTP {status} on GET /programs/{{id}}: {detail(text)}")


def event_read() -> None:
    events = ops.get_events(config["program_id"])
    ids = [e.get("id") for e in events or ()]
    if config["event_id"] not in ids:
        status, _text = last("GET", "/events")
        raise fail(f"event not listed (HTTP {status})")


def ven_create() -> None:
    resources = [{"resourceName": f"{config['ven_id']}-heater"}]
    ven = ops.create_ven(f"{config['ven_id']}-own", resources=resources)
    if ven:
        return
    status, text = last("POST", "/vens")
    if status == 400 and "objectType" in text:
        raise Outcome(
            "3.0",
            "sends no objectType (3.1 requires VEN_VEN_REQUEST) and its resources inline: "
            "HTTP 400 naming objectType",
        )
    raise fail(f"HTTP {status} on POST /vens: {detail(text)}")


def report_create() -> None:
    """The client's report path (``send_report``) for a VEN with one resource."""
    ven = VEN({"venName": f"{config['ven_id']}-own", "resources": [{"resourceName": "heater"}]})
    ops.send_report(config["event_id"], config["program_id"], ven, reportDescriptor={"x": 1})
    status, text = last("POST", "/reports")
    if status != 201:
        raise fail(f"HTTP {status} on POST /reports: {detail(text)}")


m.run("program_read", program_read, describe)
m.run("event_read", event_read, describe)
m.run("ven_create", ven_create, describe)
m.set(
    "resource_create",
    "3.0",
    "resources only inline in the VEN object (3.0); no resource endpoint calls",
)
m.set("events_targets", "n/a", "no target filter")
m.run("report_create", report_create, describe)
for key in ("subscription_create", "webhook_delivery"):
    m.set(key, "n/a", "no subscriptions")
m.set("mqtt", "n/a", "no MQTT")
m.emit()
