"""The compatibility matrix of third-party OpenADR 3 clients against ``drready vtn serve``
(C1, S1; issue 16 item 4): ``python-oa3-client``, ``openadr3-client`` with its GAC compliance
plugin, ``toadr3`` and ``oadr30-ven-ud``, each pinned in its own virtual environment, drive a
``vtn serve`` child over HTTPS (tokens, programs, events, VENs, resources, targets, reports,
subscriptions, webhook delivery to an echo-answering HTTPS receiver, MQTT through the
development broker and through a mutual-TLS broker of the test's own with `vtn mqtt-config`'s
per-client ACL, each client given its certificate by GET /notifiers). The table in
``docs/profile-openadr3.md`` must be exactly what was
measured (``python -m tests.compat.harness --write`` rewrites it).

Needs Python >= 3.12 (the ElaadNL client requires it), PyPI on first use (the environments are
cached outside the repository, keyed by the pinned versions), the development broker at
127.0.0.1:1883 and the mosquitto binary; without them the test skips saying so (CI turns skips
into failures). Takes 25-40 s on a warm cache (two VTNs, four clients in parallel each), about
2.5 min on the first install on a busy machine.
"""

from __future__ import annotations

import difflib
import json
import socket
from pathlib import Path

import pytest

from tests.compat import harness


def _missing() -> str | None:
    if harness.python312() is None:
        return "no Python >= 3.12 on this machine (openadr3-client needs it)"
    if not Path(harness.MOSQUITTO).exists():
        return f"{harness.MOSQUITTO} not installed (apt-get install mosquitto)"
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1.0):
            return None
    except OSError as err:
        return f"MQTT broker at 127.0.0.1:1883 unreachable ({err}): start mosquitto"


def test_documented_compatibility_matrix_is_the_measured_one(tmp_path: Path) -> None:
    if (missing := _missing()) is not None:
        pytest.skip(missing)
    matrix = harness.measure(tmp_path)
    (tmp_path / "matrix.json").write_text(json.dumps(matrix, indent=1))
    measured = harness.render(matrix)
    documented = harness.documented_table()
    diff = "\n".join(
        difflib.unified_diff(
            documented.splitlines(), measured.splitlines(), "documented", "measured", lineterm=""
        )
    )
    logs = f"client outputs and the VTN log under {tmp_path}"
    assert documented == measured, (
        f"docs/profile-openadr3.md's compatibility table is not what was measured "
        f"(python -m tests.compat.harness --write updates it; {logs}):\n{diff}"
    )


def test_render_numbers_each_distinct_note_once() -> None:
    """The table's notes: one number per distinct note, in order of first use."""
    cells = {key: ("PASS", "") for key, _ in harness.ROWS}
    a = {**cells, "token": ("FAIL", "why"), "mqtt": ("n/a", "no MQTT")}
    b = {**cells, "token": ("3.0", "no MQTT")}
    matrix = {spec.slug: dict(cells) for spec in harness.CLIENTS}
    matrix[harness.CLIENTS[0].slug] = a
    matrix[harness.CLIENTS[1].slug] = b
    lines = harness.render(matrix).splitlines()
    token_row = next(line for line in lines if line.startswith("| token"))
    assert token_row.split(" | ")[1:3] == ["FAIL [1]", "3.0: not in that version [2]"]
    mqtt_row = next(line for line in lines if line.startswith("| MQTT"))
    assert mqtt_row.split(" | ")[1] == "not in the client [2]"
    assert lines[-2:] == ["1. why", "2. no MQTT"]
