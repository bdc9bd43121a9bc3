"""A local certificate authority for development and tests (S1: encrypt every interconnection).

``drready certs --out DIR`` (:func:`certs_command`) writes a self-contained PKI so that the VTN,
the maker clouds and the home gateways can talk HTTPS (and mutual TLS) on a developer machine
without a public CA:

========================  =======  ==================================================
file                      mode     content
========================  =======  ==================================================
``ca.pem``                0644     self-signed CA certificate (trust anchor)
``ca-key.pem``            0600     CA private key (only needed to issue more certs)
``server.pem``            0644     server certificate, EKU serverAuth, SANs
``server-key.pem``        0600     server private key
``client-<name>.pem``     0644     client certificate, EKU clientAuth, CN = name
``client-<name>-key.pem`` 0600     client private key
========================  =======  ==================================================

All keys are ECDSA P-256 (``secp256r1``), certificates are signed with ECDSA-SHA256 and carry
the extensions a strict RFC 5280 verifier (``VERIFY_X509_STRICT``) expects: basic constraints,
key usage, subject and authority key identifiers. Validity starts five minutes in the past to
tolerate clock skew. Existing files are never overwritten unless asked, and the output directory
must lie outside any git work tree: private keys do not belong in the repository.

This CA is for local experiments and tests only; production deployments use certificates from
the operator's own PKI.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drready.security.paths import git_work_tree, write_private_file, write_public_file

__all__ = [
    "CA_MAX_DAYS",
    "LEAF_MAX_DAYS",
    "CertBundle",
    "CertsArgumentError",
    "ClientCertPaths",
    "cert_to_pem",
    "certs_command",
    "key_to_pem",
    "load_certificate",
    "make_ca",
    "make_certificate",
    "write_bundle",
]

CA_MAX_DAYS = 3650
"""Longest CA validity accepted [d] (10 years)."""
LEAF_MAX_DAYS = 825
"""Longest leaf validity accepted [d]; the CA/Browser Forum limit that macOS/iOS still enforce."""

_CLOCK_SKEW = dt.timedelta(minutes=5)
_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_CN_MAX = 64  # RFC 5280 Appendix A, ub-common-name

PrivateKey = ec.EllipticCurvePrivateKey


class CertsArgumentError(ValueError):
    """A bad argument to :func:`certs_command`; ``str()`` is one line naming the argument."""

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"{argument}: {reason}")
        self.argument = argument
        self.reason = reason


@dataclass(frozen=True)
class ClientCertPaths:
    """Where one client's certificate and key were written."""

    name: str
    cert: Path
    key: Path


@dataclass(frozen=True)
class CertBundle:
    """Paths written by :func:`write_bundle`."""

    out_dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    clients: tuple[ClientCertPaths, ...]

    def client(self, name: str) -> ClientCertPaths:
        """The paths of client ``name``; ``KeyError`` if the bundle has no such client."""
        for entry in self.clients:
            if entry.name == name:
                return entry
        raise KeyError(name)

    @property
    def private_keys(self) -> tuple[Path, ...]:
        """All private key files of the bundle."""
        return (self.ca_key, self.server_key, *(c.key for c in self.clients))


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _check_common_name(common_name: str) -> None:
    if not common_name.strip() or len(common_name) > _CN_MAX:
        raise ValueError(f"common_name must be 1–{_CN_MAX} characters, got {common_name!r}")


def _check_days(days: int, maximum: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= maximum:
        raise ValueError(f"days must be an integer in 1–{maximum}, got {days!r}")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "drready development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(
    common_name: str = "drready local CA", days: int = CA_MAX_DAYS
) -> tuple[PrivateKey, x509.Certificate]:
    """Create a self-signed CA: a P-256 key and a certificate that may sign leaves only.

    Parameters
    ----------
    common_name : str
        Subject CN of the CA.
    days : int
        Validity [d], 1–3650.

    Returns
    -------
    (key, cert)
    """
    _check_common_name(common_name)
    _check_days(days, CA_MAX_DAYS)
    key = _new_key()
    name = _name(common_name)
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_certificate(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    dns_names: Iterable[str] = ("localhost",),
    ip_addresses: Iterable[str] = ("127.0.0.1",),
    client: bool = False,
    days: int = LEAF_MAX_DAYS,
    key: PrivateKey | None = None,
) -> tuple[PrivateKey, x509.Certificate]:
    """Issue a leaf certificate signed by the CA.

    Parameters
    ----------
    ca_key, ca_cert
        The issuing CA (from :func:`make_ca`).
    common_name : str
        Subject CN; for client certificates the client's identity (e.g. the OAuth2 client id).
    dns_names, ip_addresses : iterable of str
        Subject alternative names. Hostname verification (RFC 6125) looks only at these, never
        at the CN, so a server certificate needs at least one. Empty for both → no SAN
        extension (allowed for client certificates only).
    client : bool
        ``False``: a server certificate (EKU serverAuth). ``True``: a client certificate for
        mutual TLS (EKU clientAuth).
    days : int
        Validity [d], 1–825.
    key : private key, optional
        The subject's existing key (a renewal keeps it); default a new P-256 key.

    Returns
    -------
    (key, cert)
    """
    _check_common_name(common_name)
    _check_days(days, LEAF_MAX_DAYS)
    dns = [x509.DNSName(d) for d in dns_names]
    try:
        ips = [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    except ValueError as err:
        raise ValueError(f"ip_addresses: {err}") from err
    sans: list[x509.GeneralName] = [*dns, *ips]
    if not client and not sans:
        raise ValueError("dns_names/ip_addresses: a server certificate needs at least one SAN")
    key = _new_key() if key is None else key
    public = key.public_key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def key_to_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key (protect the file by its mode, 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_to_pem(cert: x509.Certificate) -> bytes:
    """PEM of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certificate(path: Path) -> x509.Certificate:
    """Read a PEM certificate."""
    return x509.load_pem_x509_certificate(path.read_bytes())


def _check_client_names(client_names: Sequence[str]) -> None:
    for name in client_names:
        if not _CLIENT_NAME.fullmatch(name):
            raise ValueError(
                f"client_names: {name!r} must be 1–63 of A-Z a-z 0-9 . _ - "
                "and start with a letter or digit"
            )
    if len(set(client_names)) != len(client_names):
        raise ValueError(f"client_names: duplicates in {list(client_names)!r}")


def write_bundle(
    out_dir: Path,
    *,
    server_names: Sequence[str] = ("localhost",),
    server_ips: Sequence[str] = ("127.0.0.1", "::1"),
    client_names: Sequence[str] = ("ven-1",),
    overwrite: bool = False,
) -> CertBundle:
    """Create a CA, one server certificate and one client certificate per name in ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Target directory, created (mode 0700) if missing.
    server_names, server_ips : sequence of str
        DNS and IP subject alternative names of the server certificate; its CN is the first
        DNS name (or ``"drready server"``).
    client_names : sequence of str
        One ``client-<name>.pem`` per name (CN = name); letters, digits, ``.``, ``_``, ``-``.
    overwrite : bool
        Replace existing files. Without it, ``FileExistsError`` is raised before anything is
        written if any target file exists.

    Returns
    -------
    CertBundle
    """
    _check_client_names(client_names)
    out_dir = out_dir.expanduser()
    bundle = CertBundle(
        out_dir=out_dir,
        ca_cert=out_dir / "ca.pem",
        ca_key=out_dir / "ca-key.pem",
        server_cert=out_dir / "server.pem",
        server_key=out_dir / "server-key.pem",
        clients=tuple(
            ClientCertPaths(n, out_dir / f"client-{n}.pem", out_dir / f"client-{n}-key.pem")
            for n in client_names
        ),
    )
    if not overwrite:
        existing = [p for p in _targets(bundle) if p.exists() or p.is_symlink()]
        if existing:
            raise FileExistsError(
                errno.EEXIST, "exists already (pass overwrite=True)", str(existing[0])
            )

    ca_key, ca_cert = make_ca()
    server_cn = server_names[0] if server_names else "drready server"
    server_key, server_cert = make_certificate(
        ca_key, ca_cert, server_cn, dns_names=server_names, ip_addresses=server_ips
    )
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(bundle.ca_key, key_to_pem(ca_key), overwrite=overwrite)
    write_public_file(bundle.ca_cert, cert_to_pem(ca_cert), overwrite=overwrite)
    write_private_file(bundle.server_key, key_to_pem(server_key), overwrite=overwrite)
    write_public_file(bundle.server_cert, cert_to_pem(server_cert), overwrite=overwrite)
    for entry in bundle.clients:
        key, cert = make_certificate(
            ca_key, ca_cert, entry.name, dns_names=(), ip_addresses=(), client=True
        )
        write_private_file(entry.key, key_to_pem(key), overwrite=overwrite)
        write_public_file(entry.cert, cert_to_pem(cert), overwrite=overwrite)
    return bundle


def _targets(bundle: CertBundle) -> list[Path]:
    paths = [bundle.ca_cert, bundle.ca_key, bundle.server_cert, bundle.server_key]
    for entry in bundle.clients:
        paths += [entry.cert, entry.key]
    return paths


def certs_command(
    out_dir: Path,
    overwrite: bool,
    *,
    server_names: Sequence[str] = ("localhost",),
    client_names: Sequence[str] = ("ven-1",),
) -> CertBundle:
    """Back-end of ``drready certs --out DIR [--overwrite]``: validate, then :func:`write_bundle`.

    Raises
    ------
    CertsArgumentError
        (a ``ValueError``) with a one-line message naming the argument (``out_dir``,
        ``server_names`` or ``client_names``) and the attribute ``argument``; the CLI maps it to
        ``--out`` etc. and exit status 2.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise CertsArgumentError("out_dir", f"{out_dir} exists and is not a directory")
    repo = git_work_tree(out_dir)
    if repo is not None:
        raise CertsArgumentError(
            "out_dir",
            f"{out_dir} is inside the git work tree {repo}; private keys must stay outside "
            "the repository (e.g. use ~/.config/drready/certs)",
        )
    if not server_names:
        raise CertsArgumentError("server_names", "at least one DNS name is required")
    try:
        return write_bundle(
            out_dir, server_names=server_names, client_names=client_names, overwrite=overwrite
        )
    except FileExistsError as err:
        raise CertsArgumentError(
            "out_dir", f"{err.filename} exists already; pass --overwrite to replace it"
        ) from err
    except ValueError as err:
        argument, _, reason = str(err).partition(": ")
        if argument not in {"client_names", "dns_names/ip_addresses", "ip_addresses"}:
            argument, reason = "server_names", str(err)
        raise CertsArgumentError(argument, reason) from err
    except OSError as err:
        raise CertsArgumentError("out_dir", f"cannot write {out_dir}: {err.strerror}") from err
