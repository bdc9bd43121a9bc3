"""MQTT client certificates issued by the VTN: the ``CERTIFICATE`` authentication of the MQTT
notifier binding (OpenADR 3.1.0 Definition.md, ``mqttNotifierAuthenticationCertificate``;
issue 16 item 2; C1, S1).

``drready vtn mqtt-config`` makes a broker CA and a Mosquitto configured with
``require_certificate true`` and ``use_identity_as_username true``: the broker lets in only a
client whose certificate that CA signed, and takes the certificate's CN as its user name, the
name its ACL (``clients/%u/#``) keys on. ``vtn serve`` holds that CA's key and answers ``GET
/notifiers`` for each authenticated client with ``caCert``, ``clientCert`` (CN = its OAuth2
client id) and ``clientKey`` (:meth:`MqttCertIssuer.material`), so a client following the
specification connects with what ``/notifiers`` gave it and the broker enforces the ACL.

Per client, one key and one certificate are kept in the issuer's directory (0700, outside the
repository): ``<client id>-key.pem`` (0600, written once, never replaced: the key a client holds
stays valid across calls) and ``<client id>.pem``. The certificate is issued again, for the same
key, when it expires within :data:`RENEW_BEFORE_DAYS`, when the CA changed (``mqtt-config``
made a new one) or when it does not match the key. Several worker processes share the directory
under an exclusive ``flock``; within a process the answer is cached in memory. The VTN's own
publishing certificate comes from the same issuer (:meth:`MqttCertIssuer.files`, CN = its broker
user name).

Threat note: the private key travels in the ``/notifiers`` answer, so that answer is only as
private as the VTN's TLS and the client's token (the specification's design); the answer is
marked ``Cache-Control: no-store``. Revocation is not implemented: a client removed from the
registry keeps its certificate until it expires (:data:`CLIENT_CERT_DAYS`), and is refused by
the VTN at once; removing its ACL lines (re-running ``mqtt-config``) bars it from the broker.
A running process keeps the certificate it loaded: the VTN's publisher reads its own at start
and a push VEN the one ``/notifiers`` gave it when it subscribed, so either must be restarted
(or re-subscribe) within :data:`CLIENT_CERT_DAYS` − :data:`RENEW_BEFORE_DAYS` days.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drready.openadr.vtn.mqtt_access import VTN_USER, check_user_name
from drready.security.certs import cert_to_pem, key_to_pem, make_certificate
from drready.security.files import make_private_dirs
from drready.security.paths import git_work_tree, write_private_file

if TYPE_CHECKING:
    from drready.openadr.vtn.settings import VtnSettings

__all__ = [
    "CLIENT_CERT_DAYS",
    "RENEW_BEFORE_DAYS",
    "MqttCertIssuer",
    "MqttMaterial",
    "issuer_for",
]

CLIENT_CERT_DAYS = 365
"""Validity of an issued MQTT client certificate [d]."""
RENEW_BEFORE_DAYS = 30
"""An issued certificate expiring within this many days is issued again (same key) [d]."""

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class MqttMaterial:
    """The PEM strings of ``mqttNotifierAuthenticationCertificate``."""

    ca_cert: str
    client_cert: str
    client_key: str


class MqttCertIssuer:
    """Issues and keeps the MQTT client certificates (see the module docstring).

    Parameters
    ----------
    ca_cert_file, ca_key_file : Path
        The broker CA of ``drready vtn mqtt-config`` (its key 0600, outside the repository).
    directory : Path
        Where the issued keys and certificates live (made 0700; outside the repository).
    reserved : iterable of str
        Names no client may get a certificate for (the VTN's own user, which may publish).
    """

    def __init__(
        self,
        ca_cert_file: Path,
        ca_key_file: Path,
        directory: Path,
        *,
        reserved: Iterable[str] = (VTN_USER,),
    ) -> None:
        for field, path in (("ca_key_file", ca_key_file), ("directory", directory)):
            if git_work_tree(path) is not None:
                raise ValueError(f"{field}: {path} is inside a git work tree; keys live outside it")
        if ca_key_file.stat().st_mode & 0o077:
            raise ValueError(f"ca_key_file: {ca_key_file} must be 0600 (readable by you only)")
        self.ca_pem = ca_cert_file.read_bytes()
        self.ca_cert = x509.load_pem_x509_certificate(self.ca_pem)
        key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"ca_key_file: {ca_key_file} is not an EC private key")
        if key.public_key().public_bytes(*_SPKI) != self.ca_cert.public_key().public_bytes(*_SPKI):
            raise ValueError(f"ca_key_file: {ca_key_file} does not belong to {ca_cert_file}")
        self._ca_key = key
        self.reserved = frozenset(reserved)
        self.directory = directory
        make_private_dirs(directory)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[dt.datetime, MqttMaterial]] = {}
        self.issued = 0
        """Certificates signed by this process (tests, observability)."""

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock, (self.directory / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def material(self, client_id: str) -> MqttMaterial:
        """CA certificate, client certificate (CN = ``client_id``) and key, as PEM strings.

        Raises
        ------
        ValueError
            ``client_id`` cannot be a broker user name (a topic level), or is reserved.
        """
        if client_id in self.reserved:
            raise ValueError(f"client_id: {client_id!r} is the VTN's own broker user name")
        return self._material(client_id)

    def _material(self, client_id: str) -> MqttMaterial:
        check_user_name(client_id)
        now = dt.datetime.now(dt.UTC)
        cached = self._cache.get(client_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self._exclusive():
            key, cert = self._load_or_issue(client_id, now)
        material = MqttMaterial(
            self.ca_pem.decode(), cert_to_pem(cert).decode(), key_to_pem(key).decode()
        )
        renew_at = cert.not_valid_after_utc - dt.timedelta(days=RENEW_BEFORE_DAYS)
        self._cache[client_id] = (renew_at, material)
        return material

    def files(self, client_id: str) -> tuple[Path, Path]:
        """Paths of the (current) certificate and key of ``client_id`` (the VTN's own: reserved
        names allowed)."""
        self._material(client_id)
        return self.directory / f"{client_id}.pem", self.directory / f"{client_id}-key.pem"

    def _load_or_issue(
        self, client_id: str, now: dt.datetime
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key_path = self.directory / f"{client_id}-key.pem"
        cert_path = self.directory / f"{client_id}.pem"
        key: ec.EllipticCurvePrivateKey | None = None
        if key_path.exists():
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if isinstance(loaded, ec.EllipticCurvePrivateKey):
                key = loaded
        cert = None
        if key is not None and cert_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if not self._current(cert, key, now):
                cert = None
        if key is not None and cert is not None:
            return key, cert
        new_key = key is None
        key, cert = make_certificate(
            self._ca_key,
            self.ca_cert,
            client_id,
            dns_names=(),
            ip_addresses=(),
            client=True,
            days=CLIENT_CERT_DAYS,
            key=key,
        )
        if new_key:
            write_private_file(key_path, key_to_pem(key), overwrite=True)
        write_private_file(cert_path, cert_to_pem(cert), overwrite=True)
        self.issued += 1
        return key, cert

    def _current(
        self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, now: dt.datetime
    ) -> bool:
        """Issued by this CA for this key and valid beyond the renewal margin."""
        if cert.issuer != self.ca_cert.subject:
            return False
        try:
            cert.verify_directly_issued_by(self.ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        public = cert.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            return False
        if public.public_numbers() != key.public_key().public_numbers():
            return False
        return cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_BEFORE_DAYS)


def issuer_for(settings: VtnSettings) -> MqttCertIssuer:
    """The issuer of ``settings.mqtt_ca_file``/``mqtt_ca_key_file`` (``mqtt_cert_dir``, default
    ``issued/`` next to the key); ValueError naming the setting when either is missing."""
    if settings.mqtt_ca_file is None or settings.mqtt_ca_key_file is None:
        raise ValueError("mqtt_ca_key_file: certificate authentication needs the CA and its key")
    key = Path(settings.mqtt_ca_key_file)
    directory = Path(settings.mqtt_cert_dir) if settings.mqtt_cert_dir else key.parent / "issued"
    vtn_user = settings.mqtt_username or VTN_USER
    return MqttCertIssuer(Path(settings.mqtt_ca_file), key, directory, reserved=(vtn_user,))
