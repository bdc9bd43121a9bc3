"""Access control of the VTN's MQTT broker: a broker CA, client certificates and topic ACLs
for Mosquitto (issue 16 item 2; C1, S1).

OpenADR 3.1 leaves topic access control to the broker (Definition.md "Notifications via
Additional Protocols"), and an anonymous broker lets any ``#`` subscriber read every event with
its targets. The 3.1 authentication methods a broker can be announced with are ``ANONYMOUS``,
``OAUTH2_BEARER_TOKEN`` (the access token as password: stock Mosquitto cannot check a JWT) and
``CERTIFICATE`` (mutual TLS), which Mosquitto enforces by itself. This module writes what a
Mosquitto 2 broker needs for the last one:

* ``ca.pem`` / ``ca-key.pem`` (0600) — the broker CA (:mod:`drready.security.certs`, P-256),
  kept when re-run so that certificates issued earlier stay valid; ``vtn serve --mqtt-ca-key``
  holds the key and issues each client its certificate through ``GET /notifiers``
  (:mod:`drready.openadr.vtn.mqtt_certs`);
* ``server.pem`` / ``server-key.pem`` — the broker's TLS certificate (serverAuth, SANs the
  listen address, ``localhost`` and ``127.0.0.1`` plus any ``server_names``);
* ``acl`` — who reads what, by user name = the certificate's CN = the OAuth2 client id:

  - the VTN's own user (:data:`VTN_USER` by default) publishes every topic and reads none;
  - every client reads its own subtree only, ``clients/<its user name>/#`` — the per-VEN topics
    of :mod:`drready.openadr.vtn.mqtt` live there (``clients/{clientID}/vens/{venID}/events/…``),
    so one ``pattern read clients/%u/#`` line keeps every VEN to its own topics, VENs that
    register later included, without regenerating the ACL;
  - the general topics carry objects unhidden (all targets), so only the scopes that may read
    them everywhere get them: ``read_all`` → ``programs/#`` and every client's subtree
    (``clients/#``), ``read_bl`` → ``events/#``, ``reports/#``, ``subscriptions/#``,
    ``vens/#``, ``resources/#`` — the scopes the topic-name endpoints ask for.

* ``mosquitto.conf`` — one TLS listener (loopback by default) with ``require_certificate true``
  and ``use_identity_as_username true`` (a client without a certificate of the CA fails the
  handshake; the CN is the user name the ACL sees), ``allow_anonymous false``, no persistence.

A client id that cannot be a topic level (``/``, ``+``, ``#``, NUL, empty) is refused. Every
file is 0600 in a 0700 directory outside the repository (the broker must run as their owner,
``user`` in the configuration).

References
----------
Eclipse Mosquitto 2.0 ``mosquitto.conf(5)`` (``require_certificate``,
``use_identity_as_username``, ``cafile``, ``acl_file``, ``pattern``, ``allow_anonymous``,
``user``); OpenADR 3.1.0 openadr3.yaml ``mqttNotifierAuthenticationCertificate``.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drready.security.certs import LEAF_MAX_DAYS, cert_to_pem, key_to_pem, make_ca, make_certificate
from drready.security.files import make_private_dirs
from drready.security.paths import git_work_tree, write_private_file
from drready.security.tokens import READ_ALL, READ_BL, ClientRecord

__all__ = [
    "CLIENT_TOPIC_ROOT",
    "VTN_USER",
    "BrokerFiles",
    "acl_text",
    "check_user_name",
    "conf_text",
    "load_or_make_ca",
    "write_broker_config",
]

VTN_USER = "drready-vtn"
"""The VTN's own user name at the broker (the one that publishes)."""

CLIENT_TOPIC_ROOT = "clients"
"""The root of every client's own subtree, ``clients/<user name>/…``."""

SCOPE_TOPICS: Mapping[str, tuple[str, ...]] = {
    READ_ALL: ("programs/#", f"{CLIENT_TOPIC_ROOT}/#"),
    READ_BL: ("events/#", "reports/#", "subscriptions/#", "vens/#", "resources/#"),
}
"""The general topics each scope reads (the scopes the topic-name endpoints require)."""

_USER = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")


def check_user_name(name: str, field: str = "client_id") -> str:
    """``name`` if it can be a broker user name and a topic level; ValueError naming ``field``
    otherwise (no ``/``, ``+``, ``#``, ``:``, spaces or control characters)."""
    if not _USER.match(name):
        raise ValueError(
            f"{field}: {name!r} cannot be an MQTT user name and topic level; allowed: 1–128 of "
            "letters, digits and . _ @ -"
        )
    return name


def acl_text(clients: Iterable[ClientRecord], *, vtn_user: str = VTN_USER) -> str:
    """The ``acl_file`` (see the module docstring)."""
    lines = [
        "# drready: written by `drready vtn mqtt-config`; regenerate, do not edit",
        "# every client reads its own subtree only (%u = the authenticated user name)",
        f"pattern read {CLIENT_TOPIC_ROOT}/%u/#",
        "",
        "# the VTN publishes every notification",
        f"user {check_user_name(vtn_user, 'vtn_user')}",
        "topic write #",
    ]
    for client in sorted(clients, key=lambda c: c.client_id):
        reads = sorted({t for scope in client.scopes for t in SCOPE_TOPICS.get(scope, ())})
        if not reads:
            continue
        lines += ["", f"# {client.role}: scopes {' '.join(sorted(client.scopes))}"]
        lines.append(f"user {check_user_name(client.client_id)}")
        lines += [f"topic read {topic}" for topic in reads]
    return "\n".join(lines) + "\n"


def conf_text(
    *, directory: Path, port: int, host: str = "127.0.0.1", run_as: str | None = None
) -> str:
    """``mosquitto.conf`` for the files in ``directory`` (see the module docstring)."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be within 1–65535, got {port}")
    user = run_as or pwd.getpwuid(os.getuid()).pw_name
    where = directory.resolve()
    lines = [
        "# drready: written by `drready vtn mqtt-config`",
        f"user {user}",
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {where / 'acl'}",
        "persistence false",
        f"listener {port} {host}",
        f"cafile {where / 'ca.pem'}",
        f"certfile {where / 'server.pem'}",
        f"keyfile {where / 'server-key.pem'}",
        "require_certificate true",
        "use_identity_as_username true",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BrokerFiles:
    """What :func:`write_broker_config` wrote."""

    conf: Path
    acl: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def load_or_make_ca(out: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The broker CA in ``out`` (``ca.pem``, ``ca-key.pem``), made (0600, ``out`` 0700) if
    absent."""
    make_private_dirs(out)
    cert_path, key_path = out / "ca.pem", out / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"out: {key_path} is not an EC private key")
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key, cert = make_ca("drready MQTT broker CA")
    write_private_file(key_path, key_to_pem(key), overwrite=True)
    write_private_file(cert_path, cert_to_pem(cert), overwrite=True)
    return key, cert


def write_broker_config(
    out: Path,
    clients: Iterable[ClientRecord],
    *,
    port: int = 8883,
    host: str = "127.0.0.1",
    vtn_user: str = VTN_USER,
    run_as: str | None = None,
    server_names: Iterable[str] = (),
) -> BrokerFiles:
    """Write the broker CA (kept if present), the broker's server certificate, ``acl`` and
    ``mosquitto.conf`` into ``out`` (0700, outside any git work tree; files 0600).

    Raises
    ------
    ValueError
        ``out`` inside a git work tree, a client id that cannot be a user name, a bad port.
    """
    if git_work_tree(out) is not None:
        raise ValueError(f"out: {out} is inside a git work tree; broker keys live outside it")
    records = sorted(clients, key=lambda c: c.client_id)
    for record in records:
        check_user_name(record.client_id)
    check_user_name(vtn_user, "vtn_user")
    if vtn_user in {r.client_id for r in records}:
        raise ValueError(f"vtn_user: {vtn_user!r} is also an OAuth2 client id")
    conf_body = conf_text(directory=out, port=port, host=host, run_as=run_as)
    make_private_dirs(out)
    ca_key, ca_cert = load_or_make_ca(out)
    dns, ips = {"localhost"}, {"127.0.0.1"}
    for name in (host, *server_names):
        try:
            ips.add(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.add(name)
    server_key, server_cert = make_certificate(
        ca_key,
        ca_cert,
        "drready MQTT broker",
        dns_names=sorted(dns),
        ip_addresses=sorted(ips),
        days=LEAF_MAX_DAYS,
    )
    files = BrokerFiles(
        out / "mosquitto.conf",
        out / "acl",
        out / "ca.pem",
        out / "ca-key.pem",
        out / "server.pem",
        out / "server-key.pem",
    )
    write_private_file(files.server_key, key_to_pem(server_key), overwrite=True)
    write_private_file(files.server_cert, cert_to_pem(server_cert), overwrite=True)
    write_private_file(files.acl, acl_text(records, vtn_user=vtn_user).encode(), overwrite=True)
    write_private_file(files.conf, conf_body.encode(), overwrite=True)
    return files
