"""What every client script of the compatibility matrix shares (stdlib only: it runs inside each
client's own virtual environment). Not imported by drready.

* :class:`Matrix` runs one function per row and keeps its cell: ``PASS`` when it returns,
  the status and note of an :class:`Outcome` it raises, ``FAIL`` with the exception otherwise.
* :class:`EchoReceiver`: a local webhook receiver that answers the VTN's echo challenge
  (Definition.md "Webhooks") and keeps every notification it is sent.
* :func:`bl_create_event`: the BL side of a notification test (plain HTTPS with the BL token the
  harness fetched), for clients that are VEN-only.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

NOTIFY_TIMEOUT_S = 8.0
"""How long a notification may take to arrive after the event that causes it."""


class Outcome(Exception):  # noqa: N818 - a cell result, PASS-with-a-note included
    """A row's result other than PASS: ``status`` one of FAIL, 3.0, n/a, pending."""

    def __init__(self, status: str, note: str) -> None:
        super().__init__(f"{status}: {note}")
        self.status = status
        self.note = note


def fail(note: str) -> Outcome:
    return Outcome("FAIL", note)


def load_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text())
    return config


class Matrix:
    """The cells of one client, printed as one JSON line by :meth:`emit`."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str]] = {}

    def run(self, key: str, fn: Callable[[], Any], describe: Callable[[BaseException], str]) -> Any:
        """Run ``fn`` for row ``key``; its value, or ``None`` if it did not pass."""
        try:
            value = fn()
        except Outcome as outcome:
            self.rows[key] = (outcome.status, outcome.note)
            return None
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.rows[key] = ("FAIL", describe(exc))
            return None
        self.rows[key] = ("PASS", "")
        return value

    def set(self, key: str, status: str, note: str) -> None:
        self.rows[key] = (status, note)

    def emit(self) -> None:
        print(json.dumps({"rows": self.rows}), flush=True)


class EchoReceiver:
    """An HTTPS webhook receiver on 127.0.0.1 (``https://localhost:PORT/callbacks``, with the
    certificate the harness gives): answers ``GET ?echo=X`` with ``X``, keeps POSTs."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.received: list[dict[str, Any]] = []
        self.echoes = 0
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                echo = parse_qs(urlsplit(self.path).query).get("echo", [""])[0]
                receiver.echoes += 1
                body = echo.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = {"raw": raw.decode("utf-8", "replace")}
                with receiver._cond:
                    receiver.received.append(payload)
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(config["receiver_cert"], config["receiver_key"])
        self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"https://localhost:{self._server.server_address[1]}/callbacks"

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not any(predicate(p) for p in self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        self._server.shutdown()


def notification_names(payload: Any) -> str:
    """The eventName (or other name) a notification carries, '' when none."""
    if not isinstance(payload, dict):
        return ""
    obj = payload.get("object") or {}
    return str(obj.get("eventName") or obj.get("programName") or "")


def bl_get(config: dict[str, Any], path: str) -> Any:
    """As BL (the harness's token): GET ``path`` (with its query), the decoded JSON."""
    req = urllib.request.Request(
        config["vtn"] + path, headers={"Authorization": f"Bearer {config['bl_token']}"}
    )
    ctx = ssl.create_default_context(cafile=config["ca"])
    with urllib.request.urlopen(req, context=ctx, timeout=10) as res:
        return json.loads(res.read())


def bl_create_event(config: dict[str, Any], name: str) -> dict[str, Any]:
    """As BL (the harness's token): an untargeted event in the seeded program."""
    body = {
        "programID": config["program_id"],
        "eventName": name,
        "intervalPeriod": {"start": config["start"], "duration": "PT1H"},
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
    }
    req = urllib.request.Request(
        config["vtn"] + "/events",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {config['bl_token']}",
            "Content-Type": "application/json",
        },
    )
    ctx = ssl.create_default_context(cafile=config["ca"])
    with urllib.request.urlopen(req, context=ctx, timeout=10) as res:
        created: dict[str, Any] = json.loads(res.read())
        return created
