"""Access control of the VTN's MQTT broker: per-client credentials and topic ACLs for Mosquitto
(issue 16 item 2; C1, S1).

OpenADR 3.1 leaves topic access control to the broker (Definition.md "Notifications via
Additional Protocols"), and an anonymous broker lets any ``#`` subscriber read every event with
its targets. This module writes what a Mosquitto 2 broker needs so that it does not:

* ``passwd`` — one line per client, ``user:$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512
  with a 12-byte random salt and a 64-byte hash, both base64, the format ``mosquitto_passwd``
  writes by default since Mosquitto 2.0 (:func:`mosquitto_hash`; checked against
  ``mosquitto_passwd`` itself in the tests).
* ``acl`` — who reads what:

  - the VTN's own user (:data:`VTN_USER` by default) publishes every topic and reads none;
  - every client reads its own subtree only, ``clients/<its user name>/#`` — the per-VEN topics
    of :mod:`drready.openadr.vtn.mqtt` live there (``clients/{clientID}/vens/{venID}/events/…``),
    so one ``pattern read clients/%u/#`` line (``%u`` is the *authenticated* user name, unlike
    the client id a client picks) keeps every VEN to its own topics, VENs that register later
    included, without regenerating the ACL;
  - the general topics carry objects unhidden (all targets), so only the scopes that may read
    them everywhere get them: ``read_all`` → ``programs/#`` and every client's subtree
    (``clients/#``), ``read_bl`` → ``events/#``, ``reports/#``, ``subscriptions/#``,
    ``vens/#``, ``resources/#`` — the scopes the topic-name endpoints ask for.

* ``mosquitto.conf`` — no anonymous clients, the two files above, one listener (loopback by
  default; TLS with ``certfile``/``keyfile`` when given), no persistence.

User names are the OAuth2 client ids, so a VEN uses the same identity at the broker as at the
VTN; its MQTT password is its own random secret (``clients/<id>.password``), distinct from its
OAuth2 secret. A client id that cannot be a topic level (``/``, ``+``, ``#``, NUL, empty) is
refused. Every file is 0600 in a 0700 directory outside the repository; the broker must run as
their owner (``user`` in the configuration).

References
----------
Eclipse Mosquitto 2.0 ``mosquitto.conf(5)`` (``password_file``, ``acl_file``, ``pattern``,
``allow_anonymous``, ``user``) and ``mosquitto_passwd(1)``; ``src/password_mosq.c`` (``$7$``
= PBKDF2-SHA512, ``SALT_LEN`` 12, ``PW_DEFAULT_ITERATIONS`` 101). RFC 8018 (PBKDF2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

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
    "mosquitto_hash",
    "mosquitto_verify",
    "write_broker_config",
]

VTN_USER = "drready-vtn"
"""The VTN's own user name at the broker (the one that publishes)."""

CLIENT_TOPIC_ROOT = "clients"
"""The root of every client's own subtree, ``clients/<user name>/…``."""

SALT_BYTES = 12
"""Mosquitto's ``SALT_LEN``."""
HASH_ITERATIONS = 101
"""Mosquitto 2.0's default PBKDF2 iteration count (``PW_DEFAULT_ITERATIONS``)."""
_HASH_BYTES = 64  # SHA-512 output

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


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = HASH_ITERATIONS
) -> str:
    """The ``$7$`` password-file hash of ``password`` (PBKDF2-HMAC-SHA512, see the module)."""
    if not 1 <= iterations <= 10_000_000:
        raise ValueError(f"iterations must be within 1–10 000 000, got {iterations}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_verify(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (as the broker checks it)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise ValueError("encoded: not a Mosquitto $7$ hash")
    iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), parts[4]
    again = mosquitto_hash(password, salt=salt, iterations=iterations).split("$")[4]
    return hmac.compare_digest(again, digest)


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
    *,
    directory: Path,
    port: int,
    host: str = "127.0.0.1",
    run_as: str | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> str:
    """``mosquitto.conf`` for the files in ``directory`` (see the module docstring)."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be within 1–65535, got {port}")
    if (certfile is None) != (keyfile is None):
        raise ValueError("certfile/keyfile: give both for TLS, or neither")
    user = run_as or pwd.getpwuid(os.getuid()).pw_name
    lines = [
        "# drready: written by `drready vtn mqtt-config`",
        f"user {user}",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {directory.resolve() / 'passwd'}",
        f"acl_file {directory.resolve() / 'acl'}",
        "persistence false",
        f"listener {port} {host}",
    ]
    if certfile is not None and keyfile is not None:
        lines += [f"certfile {certfile.resolve()}", f"keyfile {keyfile.resolve()}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BrokerFiles:
    """What :func:`write_broker_config` wrote."""

    conf: Path
    passwd: Path
    acl: Path
    vtn_password: Path
    client_passwords: Mapping[str, Path]


def _password(path: Path) -> str:
    """The password kept in ``path``, or a new one written there (0600): re-running keeps every
    client's password, so adding a client does not lock the others out."""
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    write_private_file(path, (password + "\n").encode())
    return password


def write_broker_config(
    out: Path,
    clients: Iterable[ClientRecord],
    *,
    port: int = 8883,
    host: str = "127.0.0.1",
    vtn_user: str = VTN_USER,
    run_as: str | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> BrokerFiles:
    """Write ``mosquitto.conf``, ``passwd``, ``acl``, ``vtn.password`` and
    ``clients/<id>.password`` into ``out`` (0700, outside any git work tree; files 0600).

    Raises
    ------
    ValueError
        ``out`` inside a git work tree, a client id that cannot be a user name, a bad port.
    """
    if git_work_tree(out) is not None:
        raise ValueError(f"out: {out} is inside a git work tree; broker secrets live outside it")
    records = sorted(clients, key=lambda c: c.client_id)
    for record in records:
        check_user_name(record.client_id)
    check_user_name(vtn_user, "vtn_user")
    if vtn_user in {r.client_id for r in records}:
        raise ValueError(f"vtn_user: {vtn_user!r} is also an OAuth2 client id")
    make_private_dirs(out / CLIENT_TOPIC_ROOT)
    vtn_password = out / "vtn.password"
    entries = [(vtn_user, _password(vtn_password))]
    client_passwords: dict[str, Path] = {}
    for record in records:
        path = out / CLIENT_TOPIC_ROOT / f"{record.client_id}.password"
        entries.append((record.client_id, _password(path)))
        client_passwords[record.client_id] = path
    passwd = out / "passwd"
    text = "".join(f"{user}:{mosquitto_hash(pw)}\n" for user, pw in entries)
    write_private_file(passwd, text.encode(), overwrite=True)
    acl = out / "acl"
    write_private_file(acl, acl_text(records, vtn_user=vtn_user).encode(), overwrite=True)
    conf = out / "mosquitto.conf"
    body = conf_text(
        directory=out, port=port, host=host, run_as=run_as, certfile=certfile, keyfile=keyfile
    )
    write_private_file(conf, body.encode(), overwrite=True)
    return BrokerFiles(conf, passwd, acl, vtn_password, client_passwords)
