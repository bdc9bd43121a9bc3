"""The VTN against an independent client (C1 interoperability, S1 TLS): the PyPI ``openadr3``
package, as BL and as VEN, over HTTPS to uvicorn with a local CA."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openadr3
import pytest
import uvicorn

from drready.openadr import spec
from drready.openadr.vtn import VtnSettings
from drready.openadr.vtn.server import uvicorn_config
from drready.security.certs import write_bundle
from drready.security.settings import SecuritySettings
from tests.test_vtn_api import SECRETS, make_registry


@pytest.fixture
def vtn_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    bundle = write_bundle(tmp_path / "pki", client_names=())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle.ca_cert))  # httpx (openadr3) trusts our CA
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base_url = f"https://localhost:{port}"
    registry = make_registry()
    config = uvicorn_config(
        VtnSettings(database_url=f"sqlite:///{tmp_path / 'vtn.db'}", base_url=base_url),
        registry,
        port=port,
        tls=SecuritySettings(cert_file=bundle.server_cert, key_file=bundle.server_key),
    )
    config.log_level = "warning"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_openadr3_client_as_bl_and_ven(vtn_url: str) -> None:
    bl_token = openadr3.fetch_token(vtn_url, "bl", SECRETS["bl"])
    ven_token = openadr3.fetch_token(vtn_url, "ven-a", SECRETS["ven-a"], scopes=["read_targets"])
    bl = openadr3.create_bl_client(vtn_url, bl_token)
    ven = openadr3.create_ven_client(
        vtn_url, openadr3.fetch_token(vtn_url, "ven-a", SECRETS["ven-a"])
    )
    with bl, ven:
        created = bl.create_program({"programName": "dr-ready-down"})
        assert created.status_code == 201, created.text
        program = created.json()
        spec.validate("program", program)
        event_resp = bl.create_event(
            {
                "programID": program["id"],
                "eventName": "evening",
                "intervalPeriod": {"start": "2030-02-01T17:00:00+09:00", "duration": "PT1H"},
                "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [2]}]}],
            }
        )
        assert event_resp.status_code == 201, event_resp.text
        event = event_resp.json()
        assert bl.get_program_by_id(program["id"]).json() == program
        events = ven.events(programID=program["id"])
        assert [e.id for e in events] == [event["id"]]
        assert ven.program(program["id"]).id == program["id"]
        report_resp = ven.create_report(
            {
                "eventID": event["id"],
                "clientName": "gateway-a",
                "resources": [
                    {
                        "resourceName": "heater-1",
                        "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [0.8]}]}],
                    }
                ],
            }
        )
        assert report_resp.status_code == 201, report_resp.text
        report = report_resp.json()
        spec.validate("report", report)
        assert report["clientID"] == "ven-a"
        read_back = bl.get_report_by_id(report["id"])
        assert read_back.status_code == 200 and read_back.json() == report
        assert [r.id for r in bl.reports(eventID=event["id"])] == [report["id"]]
        assert bl.get_notifiers().json() == {"WEBHOOK": True}
    scoped = openadr3.OpenADRClient(vtn_url, token=ven_token)
    with scoped:
        assert scoped.get_reports().status_code == 403  # only read_targets was asked for
