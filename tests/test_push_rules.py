"""The small rules under push (issue 16 items 1, 2): which callback addresses count as private,
the per-VEN webhook key and its command, broker user names, and `vtn mqtt-config` refusing to
write secrets into the repository."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drready.cli import app
from drready.openadr.vtn.mqtt_access import check_user_name
from drready.openadr.vtn.webhooks import non_public_address, webhook_key_for

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("127.0.0.1", True),
        ("10.20.30.40", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # link-local: cloud metadata services
        ("100.64.0.1", True),  # shared address space (RFC 6598)
        ("0.0.0.0", True),
        ("224.0.0.1", True),  # multicast
        ("::1", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped: judged as the IPv4 address
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
    ],
)
def test_non_public_addresses(host: str, private: bool) -> None:
    assert (non_public_address(host, 443) is not None) is private


def test_the_webhook_key_of_a_client_is_an_hmac_of_its_id() -> None:
    master = b"m" * 40
    expected = hmac.new(master, b"drready-webhook-v1:ven-a", hashlib.sha256).digest()
    assert webhook_key_for(master, "ven-a") == expected
    assert webhook_key_for(master, "ven-b") != expected
    result = CliRunner().invoke(
        app, ["vtn", "webhook-key", "ven-a"], env={"DRREADY_WEBHOOK_KEY": "m" * 40}
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected.hex()
    short = CliRunner().invoke(
        app, ["vtn", "webhook-key", "ven-a"], env={"DRREADY_WEBHOOK_KEY": "x"}
    )
    assert short.exit_code == 2 and "DRREADY_WEBHOOK_KEY" in short.output


@pytest.mark.parametrize("name", ["a/b", "+", "#", "ven a", "", "x" * 129, "ven:a"])
def test_user_names_that_cannot_be_a_topic_level_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="client_id"):
        check_user_name(name)


def test_mqtt_config_writes_no_secrets_into_the_repository(tmp_path: Path) -> None:
    from tests.test_vtn_api import make_registry

    clients = tmp_path / "clients.toml"
    make_registry().save(clients)
    result = CliRunner().invoke(
        app,
        [
            "vtn",
            "mqtt-config",
            "--out",
            str(REPO / "broker-secrets"),
            "--clients-file",
            str(clients),
        ],
        env={},
    )
    assert result.exit_code == 2, result.output
    assert "--out" in result.output
    assert not (REPO / "broker-secrets").exists()
